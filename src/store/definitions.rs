//! Durable definitions (exchanges, queues, bindings), written as one file replaced atomically:
//! write a temporary file, fsync it, rename it over the old one, fsync the directory. A crash at
//! any point leaves either the old or the new file, never a mix.
//!
//! Format: magic `WARRENDEFS2\n`, then one framed record (`record::begin_framed`: length and
//! CRC-32, like every record Warren writes) whose payload is the entries, each a tag byte and
//! fields (strings as u16 length + bytes, flags as bytes, arguments as u32 length + encoded
//! table). Files from before (`WARRENDEFS1\n`, then `crc32 u32 | len u32 | entries`) are
//! still read.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const MAGIC: &[u8; 12] = b"WARRENDEFS2\n";
/// The magic of the format before the framed record (CRC before length).
const MAGIC_V1: &[u8; 12] = b"WARRENDEFS1\n";
const FILE: &str = "definitions.bin";

/// A durable exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeDef {
    pub vhost: String,
    pub name: String,
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    /// Encoded field table (opaque to the store).
    pub arguments: Vec<u8>,
}

/// A durable queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub vhost: String,
    pub name: String,
    pub auto_delete: bool,
    pub arguments: Vec<u8>,
    /// The queue log's directory name.
    pub log: String,
}

/// A binding between durable things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingDef {
    pub vhost: String,
    pub source: String,
    pub destination: String,
    /// true: destination is a queue; false: an exchange.
    pub to_queue: bool,
    pub routing_key: String,
    pub arguments: Vec<u8>,
}

/// Everything durable that is not a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definitions {
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn str(&mut self) -> Option<String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        Some(self.take(n)?.to_vec())
    }
}

impl Definitions {
    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let start = super::record::begin_framed(&mut out);
        let body = &mut out;
        for x in &self.exchanges {
            body.push(1);
            put_str(body, &x.vhost);
            put_str(body, &x.name);
            put_str(body, &x.kind);
            body.push(x.auto_delete as u8);
            body.push(x.internal as u8);
            put_bytes(body, &x.arguments);
        }
        for q in &self.queues {
            body.push(2);
            put_str(body, &q.vhost);
            put_str(body, &q.name);
            body.push(q.auto_delete as u8);
            put_bytes(body, &q.arguments);
            put_str(body, &q.log);
        }
        for b in &self.bindings {
            body.push(3);
            put_str(body, &b.vhost);
            put_str(body, &b.source);
            put_str(body, &b.destination);
            body.push(b.to_queue as u8);
            put_str(body, &b.routing_key);
            put_bytes(body, &b.arguments);
        }
        super::record::end_framed(&mut out, start, super::record::Checksum::Crc32);
        out
    }

    /// Decodes the file's bytes; None when they are damaged.
    pub fn decode(data: &[u8]) -> Option<Definitions> {
        let body = if let Some(rest) = data.strip_prefix(MAGIC) {
            use super::record::{read_framed, Checksum, Framed};
            match read_framed(rest, usize::MAX, Checksum::Crc32) {
                Framed::Record(payload, used) if used == rest.len() => payload,
                _ => return None,
            }
        } else {
            let rest = data.strip_prefix(MAGIC_V1)?;
            let mut r = Reader(rest);
            let crc = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
            let len = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
            let body = r.take(len)?;
            if crc32fast::hash(body) != crc {
                return None;
            }
            body
        };
        let mut r = Reader(body);
        let mut d = Definitions::default();
        while let Some(tag) = r.u8() {
            match tag {
                1 => d.exchanges.push(ExchangeDef {
                    vhost: r.str()?,
                    name: r.str()?,
                    kind: r.str()?,
                    auto_delete: r.u8()? != 0,
                    internal: r.u8()? != 0,
                    arguments: r.bytes()?,
                }),
                2 => d.queues.push(QueueDef {
                    vhost: r.str()?,
                    name: r.str()?,
                    auto_delete: r.u8()? != 0,
                    arguments: r.bytes()?,
                    log: r.str()?,
                }),
                3 => d.bindings.push(BindingDef {
                    vhost: r.str()?,
                    source: r.str()?,
                    destination: r.str()?,
                    to_queue: r.u8()? != 0,
                    routing_key: r.str()?,
                    arguments: r.bytes()?,
                }),
                _ => return None,
            }
        }
        Some(d)
    }

    /// Replaces `dir/definitions.bin` atomically.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        self.save_file(&dir.join(FILE))
    }

    /// Replaces the file at `path` atomically (through `path` with the extension `tmp`).
    pub fn save_file(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        match path.parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }

    /// Loads `dir/definitions.bin`; a missing file is an empty set, a damaged one an error.
    pub fn load(dir: &Path) -> io::Result<Definitions> {
        Self::load_file(&dir.join(FILE))
    }

    /// Loads the file at `path`; a missing file is an empty set, a damaged one an error.
    pub fn load_file(path: &Path) -> io::Result<Definitions> {
        match fs::read(path) {
            Ok(data) => Definitions::decode(&data).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is damaged", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Definitions::default()),
            Err(e) => Err(e),
        }
    }

    /// Adds everything in `other`.
    pub fn extend(&mut self, other: Definitions) {
        self.exchanges.extend(other.exchanges);
        self.queues.extend(other.queues);
        self.bindings.extend(other.bindings);
    }

    /// The names of the vhosts these definitions mention.
    pub fn vhosts(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .exchanges
            .iter()
            .map(|x| x.vhost.clone())
            .chain(self.queues.iter().map(|q| q.vhost.clone()))
            .chain(self.bindings.iter().map(|b| b.vhost.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The part of these definitions that belongs to `vhost`.
    pub fn of_vhost(&self, vhost: &str) -> Definitions {
        Definitions {
            exchanges: self
                .exchanges
                .iter()
                .filter(|x| x.vhost == vhost)
                .cloned()
                .collect(),
            queues: self
                .queues
                .iter()
                .filter(|q| q.vhost == vhost)
                .cloned()
                .collect(),
            bindings: self
                .bindings
                .iter()
                .filter(|b| b.vhost == vhost)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let d = Definitions {
            exchanges: vec![ExchangeDef {
                vhost: "/".into(),
                name: "x".into(),
                kind: "topic".into(),
                auto_delete: false,
                internal: true,
                arguments: vec![0, 0, 0, 0],
            }],
            queues: vec![QueueDef {
                vhost: "/".into(),
                name: "q".into(),
                auto_delete: true,
                arguments: vec![],
                log: "0001".into(),
            }],
            bindings: vec![BindingDef {
                vhost: "/".into(),
                source: "x".into(),
                destination: "q".into(),
                to_queue: true,
                routing_key: "a.#".into(),
                arguments: vec![],
            }],
        };
        let bytes = d.encode();
        assert_eq!(Definitions::decode(&bytes), Some(d.clone()));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(Definitions::decode(&bad), None);
        assert_eq!(
            Definitions::decode(&bytes[..bytes.len() - 1]),
            None,
            "cut short"
        );

        // The format before the framed record: magic 1, crc, length, the same entries.
        let entries = &bytes[MAGIC.len() + crate::store::record::RECORD_HEADER..];
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(&crc32fast::hash(entries).to_be_bytes());
        v1.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        v1.extend_from_slice(entries);
        assert_eq!(Definitions::decode(&v1), Some(d));
    }
}

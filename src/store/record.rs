//! On-disk records. Every file Warren writes frames its records the same way, with one writer
//! (`begin_framed` / `end_framed`) and one reader (`read_framed`): `len u32 | crc32 u32 |
//! payload`, where `len` and `crc32` cover the payload, so a torn or damaged write is detected.
//! Payloads: the queue logs' message records (below), the spool's paged-out messages, the
//! definitions snapshot. Ack records are fixed-size: `seq u64 | crc32(seq) u32`.
//!
//! Message record payload: `seq u64 | exchange (u8 len + bytes) | routing key (u8 len +
//! bytes) | properties (u32 len + bytes) | body (the rest)`.

/// A message as stored: everything needed to rebuild it, nothing broker-specific.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    /// It had been delivered to a consumer before the restart.
    pub delivered: bool,
    pub exchange: String,
    /// As published: bytes, not necessarily UTF-8.
    pub routing_key: Vec<u8>,
    pub properties: Vec<u8>,
    pub body: Vec<u8>,
}

/// Bytes before a message record's payload.
pub const RECORD_HEADER: usize = 8;
/// Size of an ack record.
pub const ACK_RECORD: usize = 12;
/// Largest record we accept on recovery (a message is at most 128 MiB plus names).
pub const MAX_RECORD: usize = 129 * 1024 * 1024;

/// Starts a framed record in `out`; returns where it starts, for `end_framed` once the
/// payload has been appended.
pub fn begin_framed(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    start
}

/// Whether a framed record's CRC is computed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Files read after a crash (queue logs, definitions): torn or damaged writes must show.
    Crc32,
    /// Scratch files written and read back by one process and deleted at start-up (the
    /// spool): the CRC field stays 0 and is not checked, which keeps paging cheap.
    Scratch,
}

/// Completes the record started at `start`: its length and (with `Checksum::Crc32`) CRC over
/// what was appended since.
pub fn end_framed(out: &mut [u8], start: usize, checksum: Checksum) {
    let payload = &out[start + RECORD_HEADER..];
    let len = payload.len() as u32;
    let crc = match checksum {
        Checksum::Crc32 => crc32fast::hash(payload),
        Checksum::Scratch => 0,
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// One framed record read from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A record whose CRC matches: its payload and the bytes it used.
    Record(&'a [u8], usize),
    /// Clean end of data.
    End,
    /// The buffer ends inside a record of this total size (header included).
    Partial(usize),
    /// A length out of bounds or a CRC that does not match.
    Damaged,
}

/// Reads the framed record at the start of `buf`; payloads over `max_len` are damage.
pub fn read_framed(buf: &[u8], max_len: usize, checksum: Checksum) -> Framed<'_> {
    if buf.is_empty() {
        return Framed::End;
    }
    if buf.len() < RECORD_HEADER {
        return Framed::Partial(RECORD_HEADER);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len > max_len {
        return Framed::Damaged;
    }
    let Some(payload) = buf.get(RECORD_HEADER..RECORD_HEADER + len) else {
        return Framed::Partial(RECORD_HEADER + len);
    };
    if checksum == Checksum::Crc32 && crc32fast::hash(payload) != crc {
        return Framed::Damaged;
    }
    Framed::Record(payload, RECORD_HEADER + len)
}

/// Appends a message record to `out`.
pub fn put_message(
    out: &mut Vec<u8>,
    seq: u64,
    exchange: &str,
    routing_key: &[u8],
    properties: &[u8],
    body: &[u8],
) {
    let ex = &exchange.as_bytes()[..exchange.len().min(255)];
    let rk = &routing_key[..routing_key.len().min(255)];
    let payload_len = 8 + 1 + ex.len() + 1 + rk.len() + 4 + properties.len() + body.len();
    out.reserve(RECORD_HEADER + payload_len);
    let start = begin_framed(out);
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(ex.len() as u8);
    out.extend_from_slice(ex);
    out.push(rk.len() as u8);
    out.extend_from_slice(rk);
    out.extend_from_slice(&(properties.len() as u32).to_be_bytes());
    out.extend_from_slice(properties);
    out.extend_from_slice(body);
    end_framed(out, start, Checksum::Crc32);
}

/// Set in an ack record's sequence number when it only records a delivery (so recovery can
/// flag exactly the messages a consumer may have seen as redelivered, as RabbitMQ does).
pub const DELIVERED_BIT: u64 = 1 << 63;

/// Appends an ack record.
pub fn put_ack(out: &mut Vec<u8>, seq: u64) {
    let b = seq.to_be_bytes();
    out.extend_from_slice(&b);
    out.extend_from_slice(&crc32fast::hash(&b).to_be_bytes());
}

/// Outcome of reading one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A valid record and the bytes it used.
    Record(StoredMessage, usize),
    /// Clean end of data.
    End,
    /// Damaged or incomplete data at this point.
    Damaged,
}

/// Reads the message record at the start of `buf`.
pub fn read_message(buf: &[u8]) -> Read {
    match read_framed(buf, MAX_RECORD, Checksum::Crc32) {
        Framed::End => Read::End,
        Framed::Record(payload, used) if payload.len() >= MIN_MESSAGE_PAYLOAD => {
            match decode_payload(payload) {
                Some(m) => Read::Record(m, used),
                None => Read::Damaged,
            }
        }
        Framed::Record(..) | Framed::Partial(_) | Framed::Damaged => Read::Damaged,
    }
}

/// The smallest message payload: seq, two empty names, an empty property list.
const MIN_MESSAGE_PAYLOAD: usize = 8 + 1 + 1 + 4;

fn decode_payload(p: &[u8]) -> Option<StoredMessage> {
    let seq = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut at = 8;
    let ex_len = *p.get(at)? as usize;
    let exchange = String::from_utf8(p.get(at + 1..at + 1 + ex_len)?.to_vec()).ok()?;
    at += 1 + ex_len;
    let rk_len = *p.get(at)? as usize;
    let routing_key = p.get(at + 1..at + 1 + rk_len)?.to_vec();
    at += 1 + rk_len;
    let props_len = u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let properties = p.get(at..at.checked_add(props_len)?)?.to_vec();
    at += props_len;
    let body = p.get(at..)?.to_vec();
    Some(StoredMessage {
        seq,
        delivered: false,
        exchange,
        routing_key,
        properties,
        body,
    })
}

/// Reads ack records; stops at the first damaged or partial one.
pub fn read_acks(buf: &[u8], mut each: impl FnMut(u64)) -> usize {
    let mut at = 0;
    while buf.len() - at >= ACK_RECORD {
        let seq_bytes = &buf[at..at + 8];
        let crc = u32::from_be_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]);
        if crc32fast::hash(seq_bytes) != crc {
            break;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(seq_bytes);
        each(u64::from_be_bytes(a));
        at += ACK_RECORD;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let mut buf = Vec::new();
        put_message(&mut buf, 7, "ex", b"rk\xff", &[0x10, 0, 2], b"hello");
        let len = buf.len();
        match read_message(&buf) {
            Read::Record(m, used) => {
                assert_eq!(used, len);
                assert_eq!(
                    (m.seq, m.exchange.as_str(), m.routing_key.as_slice()),
                    (7, "ex", &b"rk\xff"[..])
                );
                assert_eq!(m.body, b"hello");
                assert_eq!(m.properties, vec![0x10, 0, 2]);
            }
            other => panic!("{other:?}"),
        }
        for cut in 1..len {
            assert_eq!(read_message(&buf[..cut]), Read::Damaged, "cut at {cut}");
        }
        let mut flipped = buf.clone();
        flipped[len - 1] ^= 1;
        assert_eq!(read_message(&flipped), Read::Damaged);
        assert_eq!(read_message(&[]), Read::End);
    }

    #[test]
    fn acks_stop_at_a_torn_tail() {
        let mut buf = Vec::new();
        put_ack(&mut buf, 1);
        put_ack(&mut buf, 2);
        buf.extend_from_slice(&[0, 0, 0]);
        let mut seen = vec![];
        assert_eq!(read_acks(&buf, |s| seen.push(s)), 24);
        assert_eq!(seen, [1, 2]);
    }
}

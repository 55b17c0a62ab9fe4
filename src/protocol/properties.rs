//! Raw basic properties (spec 4.2.6.1 property flags + list), validated and read lazily.
//!
//! Messages carry the publisher's property bytes verbatim; routing, TTL or persistence read one
//! field at a time from them without building a `BasicProperties`. Validation accepts exactly
//! what amq-protocol's `parse_properties` accepts, with a nesting limit on field tables so a
//! hostile peer cannot exhaust the stack.

use super::cursor::Cursor;

/// Field tables nested deeper than this are refused (RabbitMQ has no limit; we need one).
pub const MAX_TABLE_DEPTH: usize = 64;

const FLAG_CONTENT_TYPE: u16 = 1 << 15;
const FLAG_CONTENT_ENCODING: u16 = 1 << 14;
const FLAG_HEADERS: u16 = 1 << 13;
const FLAG_DELIVERY_MODE: u16 = 1 << 12;
const FLAG_PRIORITY: u16 = 1 << 11;
const FLAG_CORRELATION_ID: u16 = 1 << 10;
const FLAG_REPLY_TO: u16 = 1 << 9;
const FLAG_EXPIRATION: u16 = 1 << 8;
const FLAG_MESSAGE_ID: u16 = 1 << 7;
const FLAG_TIMESTAMP: u16 = 1 << 6;
const FLAG_TYPE: u16 = 1 << 5;
const FLAG_USER_ID: u16 = 1 << 4;
const FLAG_APP_ID: u16 = 1 << 3;
const FLAG_CLUSTER_ID: u16 = 1 << 2;

/// The properties we need on the broker side, located in the raw bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PropertiesView<'a> {
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub expiration: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// The headers table including its 4-byte length prefix.
    pub headers: Option<&'a [u8]>,
}

/// Invalid property bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidProperties;

/// Checks that `raw` is a complete, well-formed property list with nothing after it.
pub fn validate(raw: &[u8]) -> Result<(), InvalidProperties> {
    view(raw).map(|_| ())
}

/// Walks the properties once, returning where the interesting fields are.
pub fn view(raw: &[u8]) -> Result<PropertiesView<'_>, InvalidProperties> {
    let mut c = Cursor::new(raw);
    let v = walk(&mut c).ok_or(InvalidProperties)?;
    if c.remaining() != 0 {
        return Err(InvalidProperties);
    }
    Ok(v)
}

fn walk<'a>(c: &mut Cursor<'a>) -> Option<PropertiesView<'a>> {
    let flags = c.u16()?;
    let mut v = PropertiesView::default();
    if flags & FLAG_CONTENT_TYPE != 0 {
        c.short_str()?;
    }
    if flags & FLAG_CONTENT_ENCODING != 0 {
        c.short_str()?;
    }
    if flags & FLAG_HEADERS != 0 {
        let start = c.rest();
        let before = c.remaining();
        skip_table(c, 0)?;
        v.headers = Some(&start[..before - c.remaining()]);
    }
    if flags & FLAG_DELIVERY_MODE != 0 {
        v.delivery_mode = Some(c.u8()?);
    }
    if flags & FLAG_PRIORITY != 0 {
        v.priority = Some(c.u8()?);
    }
    if flags & FLAG_CORRELATION_ID != 0 {
        c.short_str()?;
    }
    if flags & FLAG_REPLY_TO != 0 {
        v.reply_to = Some(c.short_str()?);
    }
    if flags & FLAG_EXPIRATION != 0 {
        v.expiration = Some(c.short_str()?);
    }
    if flags & FLAG_MESSAGE_ID != 0 {
        c.short_str()?;
    }
    if flags & FLAG_TIMESTAMP != 0 {
        c.u64()?;
    }
    if flags & FLAG_TYPE != 0 {
        c.short_str()?;
    }
    if flags & FLAG_USER_ID != 0 {
        v.user_id = Some(c.short_str()?);
    }
    for flag in [FLAG_APP_ID, FLAG_CLUSTER_ID] {
        if flags & flag != 0 {
            c.short_str()?;
        }
    }
    Some(v)
}

/// Skips a field table (length-prefixed), checking every entry.
pub fn skip_table(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    if depth > MAX_TABLE_DEPTH {
        return None;
    }
    let body = c.long_bytes()?;
    let mut inner = Cursor::new(body);
    while inner.remaining() > 0 {
        inner.short_str()?;
        skip_value(&mut inner, depth)?;
    }
    Some(())
}

fn skip_array(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    if depth > MAX_TABLE_DEPTH {
        return None;
    }
    let body = c.long_bytes()?;
    let mut inner = Cursor::new(body);
    while inner.remaining() > 0 {
        skip_value(&mut inner, depth)?;
    }
    Some(())
}

/// Skips one typed value; the tags are RabbitMQ's (as amq-protocol reads them).
fn skip_value(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    match c.u8()? {
        b't' | b'b' | b'B' => c.take(1).map(|_| ()),
        b's' | b'U' | b'u' => c.take(2).map(|_| ()),
        b'I' | b'i' | b'f' => c.take(4).map(|_| ()),
        b'l' | b'L' | b'd' | b'T' => c.take(8).map(|_| ()),
        b'D' => c.take(5).map(|_| ()),
        b'S' | b'x' => c.long_bytes().map(|_| ()),
        b'A' => skip_array(c, depth + 1),
        b'F' => skip_table(c, depth + 1),
        b'V' => Some(()),
        _ => None,
    }
}

/// The delivery mode that makes a message persistent (spec: 2 = persistent).
pub const PERSISTENT: u8 = 2;

/// Re-encodes raw properties after `edit` changes them (dead-lettering, direct reply-to).
/// Cold path: this allocates and goes through amq-protocol.
pub fn rewrite(
    raw: &[u8],
    edit: impl FnOnce(&mut amq_protocol::protocol::BasicProperties),
) -> Vec<u8> {
    use amq_protocol::frame::WriteContext;
    use amq_protocol::protocol::basic::{gen_properties, parse_properties};
    let mut props = match parse_properties(raw) {
        Ok((_, p)) => p,
        Err(_) => amq_protocol::protocol::BasicProperties::default(),
    };
    edit(&mut props);
    let encoded = gen_properties(&props)(WriteContext::from(Vec::new()));
    match encoded {
        Ok(ctx) => ctx.write,
        Err(_) => raw.to_vec(),
    }
}

/// A copy of `p` without its expiration (dead-lettered messages lose it, as in RabbitMQ).
pub fn without_expiration(
    p: &amq_protocol::protocol::BasicProperties,
) -> amq_protocol::protocol::BasicProperties {
    let mut out = amq_protocol::protocol::BasicProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.headers() {
        out = out.with_headers(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_in_raw_bytes() {
        // flags: delivery_mode + expiration
        let mut raw = vec![0x11, 0x00, 2];
        raw.push(3);
        raw.extend_from_slice(b"100");
        let v = view(&raw).unwrap();
        assert_eq!(v.delivery_mode, Some(2));
        assert_eq!(v.expiration, Some("100"));
        assert!(view(&raw[..raw.len() - 1]).is_err());
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(view(&trailing).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut t: Vec<u8> = vec![0, 0, 0, 0];
        for _ in 0..1000 {
            let mut outer = Vec::new();
            let inner_len = 1 + 1 + 1 + t.len();
            outer.extend_from_slice(&(inner_len as u32).to_be_bytes());
            outer.extend_from_slice(&[1, b'k', b'F']);
            outer.extend_from_slice(&t);
            t = outer;
        }
        let mut raw = vec![0x20, 0x00];
        raw.extend_from_slice(&t);
        assert!(view(&raw).is_err());
    }
}

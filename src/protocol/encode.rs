//! Encoders that write frames straight into the connection's output buffer.
//!
//! Deliveries, get-ok, returns, content and confirms are written by hand (no allocation; the
//! publisher's raw property bytes are copied verbatim). Every other method goes through
//! amq-protocol's generator (`put_method`), which is fine off the hot path.

use super::fast::CLASS_BASIC;
use super::frame::{
    FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD,
};
use amq_protocol::frame::{gen_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::AMQPClass;
use bytes::{BufMut, BytesMut};

const METHOD_RETURN: u16 = 50;
const METHOD_DELIVER: u16 = 60;
const METHOD_GET_OK: u16 = 71;
const METHOD_ACK: u16 = 80;
const METHOD_NACK: u16 = 120;

/// Writes a frame header with a placeholder size; returns where the size goes.
fn begin(out: &mut BytesMut, kind: u8, channel: u16) -> usize {
    out.put_u8(kind);
    out.put_u16(channel);
    let at = out.len();
    out.put_u32(0);
    at
}

/// Patches the size written by `begin` and appends the end octet.
fn finish(out: &mut BytesMut, size_at: usize) {
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
}

/// Writes a shortstr. Callers pass names that were themselves shortstrs (≤ 255 bytes);
/// anything longer is cut rather than producing a corrupt frame.
fn put_short_str(out: &mut BytesMut, s: &(impl AsRef<[u8]> + ?Sized)) {
    let s = s.as_ref();
    let b = &s[..s.len().min(255)];
    out.put_u8(b.len() as u8);
    out.put_slice(b);
}

/// basic.deliver (60,60).
pub fn put_deliver(
    out: &mut BytesMut,
    channel: u16,
    consumer_tag: &str,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &(impl AsRef<[u8]> + ?Sized),
    routing_key: &(impl AsRef<[u8]> + ?Sized),
) {
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_DELIVER);
    put_short_str(out, consumer_tag);
    out.put_u64(delivery_tag);
    out.put_u8(redelivered as u8);
    put_short_str(out, exchange);
    put_short_str(out, routing_key);
    finish(out, at);
}

/// basic.get-ok (60,71).
pub fn put_get_ok(
    out: &mut BytesMut,
    channel: u16,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &(impl AsRef<[u8]> + ?Sized),
    routing_key: &(impl AsRef<[u8]> + ?Sized),
    message_count: u32,
) {
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_GET_OK);
    out.put_u64(delivery_tag);
    out.put_u8(redelivered as u8);
    put_short_str(out, exchange);
    put_short_str(out, routing_key);
    out.put_u32(message_count);
    finish(out, at);
}

/// basic.return (60,50).
pub fn put_return(
    out: &mut BytesMut,
    channel: u16,
    reply_code: u16,
    reply_text: &str,
    exchange: &(impl AsRef<[u8]> + ?Sized),
    routing_key: &(impl AsRef<[u8]> + ?Sized),
) {
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_RETURN);
    out.put_u16(reply_code);
    put_short_str(out, reply_text);
    put_short_str(out, exchange);
    put_short_str(out, routing_key);
    finish(out, at);
}

/// A publisher confirm: basic.ack (60,80) from the server.
pub fn put_confirm_ack(out: &mut BytesMut, channel: u16, delivery_tag: u64, multiple: bool) {
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_ACK);
    out.put_u64(delivery_tag);
    out.put_u8(multiple as u8);
    finish(out, at);
}

/// A negative publisher confirm: basic.nack (60,120) with requeue=false.
pub fn put_confirm_nack(out: &mut BytesMut, channel: u16, delivery_tag: u64, multiple: bool) {
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_NACK);
    out.put_u64(delivery_tag);
    out.put_u8(multiple as u8);
    finish(out, at);
}

/// A content header frame: class basic, weight 0, the body size and the raw properties.
pub fn put_content_header(out: &mut BytesMut, channel: u16, properties: &[u8], body_size: usize) {
    let at = begin(out, FRAME_HEADER, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(0);
    out.put_u64(body_size as u64);
    out.put_slice(properties);
    finish(out, at);
}

/// The content header and body frames of a message, bodies split at `frame_max - 8`.
pub fn put_content(
    out: &mut BytesMut,
    channel: u16,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    out.reserve(properties.len() + body.len() + 40);
    put_content_header(out, channel, properties, body.len());
    let chunk = if frame_max == 0 {
        usize::MAX
    } else {
        (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1)
    };
    for piece in body.chunks(chunk) {
        out.put_u8(FRAME_BODY);
        out.put_u16(channel);
        out.put_u32(piece.len() as u32);
        out.put_slice(piece);
        out.put_u8(FRAME_END);
    }
}

/// A heartbeat frame (always channel 0).
pub fn put_heartbeat(out: &mut BytesMut) {
    out.put_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Any method, through amq-protocol's generator (cold path).
pub fn put_method(out: &mut BytesMut, channel: u16, method: AMQPClass) {
    let frame = AMQPFrame::Method(channel, method);
    // A Vec writer grows as needed, so the generator cannot hit cookie-factory's
    // "buffer too small" panic (CODEC.md pitfall 9).
    let buf: Vec<u8> = Vec::with_capacity(256);
    let result = gen_frame(&frame)(WriteContext::from(buf));
    match result {
        Ok(ctx) => out.put_slice(&ctx.write),
        Err(e) => tracing::error!(error = %e, "could not encode a method frame"),
    }
}

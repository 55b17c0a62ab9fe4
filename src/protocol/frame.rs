//! Framing (spec 2.3.5, 4.2.3): a 7-byte header (type, channel, size), the payload and the
//! 0xCE end octet. The size is checked against frame_max *before* anything is buffered, so a
//! peer can never make us allocate more than one frame_max per connection.

use crate::error::{AmqpError, AmqpResult};

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// Header (7) plus end octet (1): frame_max counts the whole frame (lapin and RabbitMQ agree).
pub const FRAME_OVERHEAD: usize = 8;
/// frame_max before tune-ok: the spec's FRAME-MIN-SIZE as RabbitMQ 4.1+ uses it.
pub const PRE_TUNE_FRAME_MAX: u32 = 8192;
/// The protocol header a 0-9-1 client sends first.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// One frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    pub kind: u8,
    pub channel: u16,
    pub payload: &'a [u8],
}

impl RawFrame<'_> {
    /// Bytes this frame occupies on the wire.
    pub fn wire_len(&self) -> usize {
        self.payload.len() + FRAME_OVERHEAD
    }
}

/// Whether a frame with this payload size is accepted. The spec counts the 8 octets of
/// framing in frame_max, but some clients (rabbitpy, AMQPStorm) fill body frames with
/// frame_max octets of payload; RabbitMQ keeps an 8-octet allowance for them and refuses
/// only a payload above frame_max, and so do we (our own frames keep to the spec).
fn payload_fits(size: usize, frame_max: u32) -> bool {
    frame_max == 0 || size <= frame_max as usize
}

/// Splits the next frame off `buf`. `Ok(None)` means "need more bytes".
pub fn split_frame(buf: &[u8], frame_max: u32) -> AmqpResult<Option<RawFrame<'_>>> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if !matches!(
        kind,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(AmqpError::frame_error(format!(
            "type {kind}, all octets = <<>>: unknown_frame"
        )));
    }
    if !payload_fits(size, frame_max) {
        // RabbitMQ's wording: payload size against the largest payload the spec allows.
        return Err(AmqpError::frame_error(format!(
            "type {kind}, all octets = <<>>: {{frame_too_large,{size},{}}}",
            frame_max as usize - FRAME_OVERHEAD
        )));
    }
    if buf.len() < size + FRAME_OVERHEAD {
        return Ok(None);
    }
    if buf[7 + size] != FRAME_END {
        return Err(AmqpError::frame_error(format!(
            "type {kind}, all octets = <<>>: {{invalid_frame_end_marker,{}}}",
            buf[7 + size]
        )));
    }
    Ok(Some(RawFrame {
        kind,
        channel,
        payload: &buf[7..7 + size],
    }))
}

/// The wire length of the frame at the start of `buf` when its only fault is its end octet:
/// the stream can still be framed after it (so the client's close-ok can be read). None for
/// any other fault, after which nothing more can be framed.
pub fn frame_end_fault_len(buf: &[u8], frame_max: u32) -> Option<usize> {
    let header = buf.get(..7)?;
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let known = matches!(
        header[0],
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    );
    let fits = payload_fits(size, frame_max);
    let end = *buf.get(7 + size)?;
    (known && fits && end != FRAME_END).then_some(size + FRAME_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_input_needs_more() {
        let f = [1u8, 0, 1, 0, 0, 0, 4, 0, 10, 0, 10, FRAME_END];
        for cut in 0..f.len() {
            assert_eq!(split_frame(&f[..cut], 8192), Ok(None));
        }
        let fr = split_frame(&f, 8192).unwrap().unwrap();
        assert_eq!(fr.channel, 1);
        assert_eq!(fr.payload, &[0, 10, 0, 10]);
        assert_eq!(fr.wire_len(), f.len());
    }

    #[test]
    fn oversize_is_rejected_from_the_header_alone() {
        let h = [3u8, 0, 1, 0xFF, 0xFF, 0xFF, 0xF0];
        assert_eq!(split_frame(&h, 131072).unwrap_err().code, 501);
    }

    #[test]
    fn a_payload_of_frame_max_octets_is_accepted_one_more_is_not() {
        let frame = |size: usize| {
            let mut f = vec![3u8, 0, 1];
            f.extend_from_slice(&(size as u32).to_be_bytes());
            f.resize(7 + size, 0);
            f.push(FRAME_END);
            f
        };
        let at_max = frame(4096);
        assert_eq!(
            split_frame(&at_max, 4096).unwrap().unwrap().payload.len(),
            4096
        );
        let over = frame(4097);
        assert_eq!(
            split_frame(&over, 4096).unwrap_err().text,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}"
        );
    }

    #[test]
    fn bad_end_octet_and_type_are_frame_errors() {
        assert_eq!(
            split_frame(&[8, 0, 0, 0, 0, 0, 0, 0], 8192)
                .unwrap_err()
                .code,
            501
        );
        assert_eq!(
            split_frame(&[9, 0, 0, 0, 0, 0, 0, 0xCE], 8192)
                .unwrap_err()
                .code,
            501
        );
    }
}

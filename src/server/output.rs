//! A connection's output: frames are encoded into one buffer, while large message bodies are
//! queued by reference between its pieces and go to the socket with vectored writes, so a
//! 64 KiB body is not copied into the output buffer (CODEC.md: large bodies are not copied).

use crate::broker::message::Message;
use crate::protocol::encode::put_content_header;
use crate::protocol::frame::{FRAME_BODY, FRAME_END, FRAME_OVERHEAD};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bodies (or body frames) at least this large are written from the message itself; smaller
/// ones are cheaper to copy than to track.
pub const LARGE_BODY: usize = 4 * 1024;
/// Most pieces handed to one vectored write.
const MAX_SLICES: usize = 256;

/// Bytes waiting for the socket, in order: the queued pieces, then the buffer.
#[derive(Debug, Default)]
pub struct Output {
    buf: BytesMut,
    queued: VecDeque<Piece>,
    queued_len: usize,
}

#[derive(Debug)]
enum Piece {
    Encoded(Bytes),
    Body {
        message: Message,
        start: usize,
        end: usize,
    },
}

impl Piece {
    fn as_slice(&self) -> &[u8] {
        match self {
            Piece::Encoded(b) => b,
            Piece::Body {
                message,
                start,
                end,
            } => &message.body()[*start..*end],
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn advance(&mut self, n: usize) {
        match self {
            Piece::Encoded(b) => b.advance(n),
            Piece::Body { start, .. } => *start += n,
        }
    }
}

impl Output {
    pub fn with_capacity(capacity: usize) -> Output {
        Output {
            buf: BytesMut::with_capacity(capacity),
            ..Output::default()
        }
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.queued_len + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything not yet written.
    pub fn clear(&mut self) {
        self.queued.clear();
        self.queued_len = 0;
        self.buf.clear();
    }

    /// Appends `message.body()[start..end]` by reference, after everything encoded so far.
    fn push_body(&mut self, message: &Message, start: usize, end: usize) {
        if !self.buf.is_empty() {
            let encoded = self.buf.split().freeze();
            self.queued_len += encoded.len();
            self.queued.push_back(Piece::Encoded(encoded));
        }
        self.queued_len += end - start;
        self.queued.push_back(Piece::Body {
            message: message.clone(),
            start,
            end,
        });
    }

    /// The content header and body frames of a delivered message, bodies split at
    /// `frame_max - 8` (spec 4.2.6.2); large body frames are queued by reference.
    pub fn put_message_content(&mut self, channel: u16, message: &Message, frame_max: u32) {
        let body = message.body();
        if body.len() < LARGE_BODY {
            crate::protocol::encode::put_content(
                &mut self.buf,
                channel,
                message.properties(),
                body,
                frame_max,
            );
            return;
        }
        put_content_header(&mut self.buf, channel, message.properties(), body.len());
        let chunk = if frame_max == 0 {
            usize::MAX
        } else {
            (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1)
        };
        let mut start = 0;
        while start < body.len() {
            let end = body.len().min(start.saturating_add(chunk));
            self.buf.put_u8(FRAME_BODY);
            self.buf.put_u16(channel);
            self.buf.put_u32((end - start) as u32);
            if end - start >= LARGE_BODY {
                self.push_body(message, start, end);
            } else {
                self.buf.put_slice(&body[start..end]);
            }
            self.buf.put_u8(FRAME_END);
            start = end;
        }
    }

    /// Marks `n` bytes as written.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.queued.front_mut() else {
                self.buf.advance(n.min(self.buf.len()));
                return;
            };
            let len = front.len();
            if n >= len {
                n -= len;
                self.queued_len -= len;
                self.queued.pop_front();
            } else {
                front.advance(n);
                self.queued_len -= n;
                return;
            }
        }
    }

    /// One write of as much as the socket takes: a plain write when nothing is queued by
    /// reference, else a vectored write of the queued pieces and the buffer. The slices are
    /// built on the stack at each poll, so they take no room in the connection's future.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> std::io::Result<usize> {
        if self.queued.is_empty() {
            return w.write(&self.buf).await;
        }
        std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for piece in self.queued.iter().take(MAX_SLICES - 1) {
                slices[n] = IoSlice::new(piece.as_slice());
                n += 1;
            }
            if n < MAX_SLICES && self.queued.len() < MAX_SLICES && !self.buf.is_empty() {
                slices[n] = IoSlice::new(&self.buf);
                n += 1;
            }
            Pin::new(&mut *w).poll_write_vectored(cx, &slices[..n])
        })
        .await
    }

    /// Writes everything (used once, when the connection ends).
    pub async fn write_all_to<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        while !self.is_empty() {
            let n = self.write_to(w).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
        }
        Ok(())
    }
}

/// Encoders write into the buffer, after anything queued.
impl Deref for Output {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        &self.buf
    }
}

impl DerefMut for Output {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

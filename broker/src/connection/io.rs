//! Reading from a stream without holding a buffer while the connection is idle, and writing
//! to one whose transport may buffer (TLS, WebSocket frames) until flushed.

use std::future::poll_fn;
use std::pin::Pin;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::io::poll_read_buf;

/// How much room a read asks for. Large enough for batches of small packets in one syscall.
const READ_CHUNK: usize = 8 * 1024;

/// Reads whatever is available into `buf` (appending), returning the byte count (0 at EOF).
///
/// The buffer is only grown when the socket actually has data: while the read is pending an
/// empty buffer is released again, so an idle connection costs no read buffer. Cancel-safe:
/// bytes are only appended by a poll that returns `Ready`.
pub async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    poll_fn(|cx| {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let polled = poll_read_buf(Pin::new(&mut *reader), cx, buf);
        if polled.is_pending() && buf.is_empty() {
            *buf = BytesMut::new();
        }
        polled
    })
    .await
}

/// What one [`write_some`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// This many bytes left the buffer (and, if it is now empty, were flushed).
    Bytes(usize),
    /// Nothing was left to write; earlier bytes were flushed.
    Flushed,
    /// The peer is gone.
    Closed,
}

/// Writes from `buf` and, once it is empty, flushes the transport.
///
/// Plain TCP needs no flush, but a WebSocket sends a frame only when flushed and TLS may hold
/// records back. `unflushed` remembers bytes written but not yet flushed, so that a write
/// cancelled between the two steps (the event loop's `select!`) is flushed on the next call.
pub async fn write_some<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &mut BytesMut,
    unflushed: &mut bool,
) -> std::io::Result<Written> {
    let mut written = Written::Flushed;
    if !buf.is_empty() {
        let n = writer.write_buf(buf).await?;
        if n == 0 {
            return Ok(Written::Closed);
        }
        *unflushed = true;
        written = Written::Bytes(n);
    }
    if buf.is_empty() && *unflushed {
        writer.flush().await?;
        *unflushed = false;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_append_to_what_is_buffered() {
        let mut input: &[u8] = b"hello";
        let mut buf = BytesMut::from(&b">"[..]);
        let n = read_some(&mut input, &mut buf).await.unwrap();
        assert_eq!(n, 5);
        assert_eq!(&buf[..], b">hello");
    }

    #[tokio::test]
    async fn end_of_stream_reads_zero() {
        let mut input: &[u8] = b"";
        let mut buf = BytesMut::new();
        assert_eq!(read_some(&mut input, &mut buf).await.unwrap(), 0);
    }
}

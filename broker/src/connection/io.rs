//! Reading from a stream without holding a buffer while the connection is idle, and writing
//! to one whose transport may buffer (TLS, WebSocket frames) until flushed.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::{poll_read_buf, poll_write_buf};

/// How much room a read asks for. Large enough for batches of small packets in one syscall.
const READ_CHUNK: usize = 8 * 1024;

/// Reads whatever is available into `buf` (appending), returning the byte count (0 at EOF).
///
/// The buffer is only grown when the socket actually has data: while the read is pending an
/// empty buffer is released again, so an idle connection costs no read buffer. Bytes are only
/// appended by a poll that returns `Ready`.
pub fn poll_read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    let polled = poll_read_buf(Pin::new(reader), cx, buf);
    if polled.is_pending() && buf.is_empty() {
        *buf = BytesMut::new();
    }
    polled
}

/// [`poll_read_some`] as a future, for the handshake.
pub async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    poll_fn(|cx| poll_read_some(reader, buf, cx)).await
}

/// What one [`poll_write_some`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// This many bytes left the buffer (and, if it is now empty, were flushed or are being).
    Bytes(usize),
    /// Nothing was left to write; earlier bytes were flushed.
    Flushed,
    /// The peer is gone.
    Closed,
}

/// Writes from `buf` and, once it is empty, flushes the transport.
///
/// Plain TCP needs no flush, but a WebSocket sends a frame only when flushed and TLS may hold
/// records back. `unflushed` remembers bytes written but not yet flushed, so the flush is
/// retried on the next call when the transport was not ready for it.
pub fn poll_write_some<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &mut BytesMut,
    unflushed: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<Written>> {
    let mut written = Written::Flushed;
    if !buf.is_empty() {
        let n = ready!(poll_write_buf(Pin::new(&mut *writer), cx, buf))?;
        if n == 0 {
            return Poll::Ready(Ok(Written::Closed));
        }
        *unflushed = true;
        written = Written::Bytes(n);
    }
    if buf.is_empty() && *unflushed {
        match Pin::new(writer).poll_flush(cx) {
            Poll::Ready(Ok(())) => *unflushed = false,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            // Report the bytes now; the flush is retried, its wake-up is registered.
            Poll::Pending if written != Written::Flushed => {}
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(written))
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

    #[test]
    fn a_pending_read_releases_an_empty_buffer() {
        let (_writer, mut reader) = tokio::io::duplex(64);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(poll_read_some(&mut reader, &mut buf, &mut cx).is_pending());
        assert_eq!(buf.capacity(), 0);
    }

    #[tokio::test]
    async fn a_write_drains_the_buffer_and_flushes() {
        let (mut writer, mut reader) = tokio::io::duplex(64);
        let mut buf = BytesMut::from(&b"hello"[..]);
        let mut unflushed = false;
        let written = poll_fn(|cx| poll_write_some(&mut writer, &mut buf, &mut unflushed, cx))
            .await
            .unwrap();
        assert_eq!(written, Written::Bytes(5));
        assert!(buf.is_empty() && !unflushed);
        let mut out = BytesMut::new();
        assert_eq!(read_some(&mut reader, &mut out).await.unwrap(), 5);
        assert_eq!(&out[..], b"hello");
    }

    #[tokio::test]
    async fn a_write_to_a_closed_peer_fails() {
        let (mut writer, reader) = tokio::io::duplex(64);
        drop(reader);
        let mut buf = BytesMut::from(&b"x"[..]);
        let mut unflushed = false;
        let written =
            poll_fn(|cx| poll_write_some(&mut writer, &mut buf, &mut unflushed, cx)).await;
        assert!(!matches!(written, Ok(Written::Bytes(_))));
    }

    #[tokio::test]
    async fn end_of_stream_reads_zero() {
        let mut input: &[u8] = b"";
        let mut buf = BytesMut::new();
        assert_eq!(read_some(&mut input, &mut buf).await.unwrap(), 0);
    }
}

//! Reading from a stream without holding a buffer while the connection is idle.

use std::future::poll_fn;
use std::pin::Pin;

use bytes::BytesMut;
use tokio::io::AsyncRead;
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

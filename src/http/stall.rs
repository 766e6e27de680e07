//! A connection's write deadline (`server.write_timeout`): once a write has to wait, the
//! peer must take some bytes within the timeout or the write fails, and hyper closes
//! the connection. A client that stops reading a response would otherwise pin it (and
//! its connection slot) for as long as it likes; this covers upgraded websockets too.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `T` whose writes fail with `TimedOut` when the peer takes nothing for `timeout`.
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Running since the first write that had to wait; cleared by any progress.
    waiting: Option<Pin<Box<Sleep>>>,
    /// Dropped with the connection (its place under the connection caps), which may
    /// outlive hyper's part of it when it becomes a websocket.
    _held: Option<Box<dyn Send + Sync>>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for WriteDeadline<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteDeadline")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T> WriteDeadline<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            waiting: None,
            _held: None,
        }
    }

    /// Keeps `value` alive as long as the connection.
    pub fn holding(mut self, value: impl Send + Sync + 'static) -> Self {
        self._held = Some(Box::new(value));
        self
    }

    /// After the inner write returned `poll`: progress clears the deadline; waiting
    /// starts it, or fails once it has passed.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let deadline = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer took no bytes within server.write_timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A writer into a 4-byte pipe nobody reads fails after the timeout; one whose
    /// reader keeps taking bytes, if slowly, does not.
    #[tokio::test]
    async fn a_stalled_peer_fails_the_write() {
        let timeout = Duration::from_millis(200);
        let (ours, _theirs) = tokio::io::duplex(4);
        let mut w = WriteDeadline::new(ours, timeout);
        let started = std::time::Instant::now();
        let err = w.write_all(b"more than four bytes").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= timeout && started.elapsed() < timeout * 10);

        let (ours, mut theirs) = tokio::io::duplex(4);
        let mut w = WriteDeadline::new(ours, timeout);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < 20 {
                tokio::time::sleep(timeout / 2).await;
                got += tokio::io::AsyncReadExt::read(&mut theirs, &mut buf)
                    .await
                    .unwrap();
            }
        });
        w.write_all(&[7u8; 20])
            .await
            .expect("a slow reader is not a stalled one");
        reader.await.unwrap();
    }
}

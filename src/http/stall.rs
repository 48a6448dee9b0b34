//! A write-stall timeout for a connection: hyper has none, so a client that
//! sends a request and then stops reading would hold its connection (and a
//! `--web.max-requests` place) for as long as it likes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a write may wait for the client to read before the connection
/// is closed. Prometheus reads as fast as it can.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `T` whose writes fail with `TimedOut` once one has been pending for
/// [`WRITE_STALL_TIMEOUT`]; any progress resets the clock.
pub struct StallTimeout<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallTimeout<T> {
    pub fn new(inner: T) -> Self {
        Self::with_timeout(inner, WRITE_STALL_TIMEOUT)
    }

    fn with_timeout(inner: T, timeout: Duration) -> Self {
        StallTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn track<R>(
        &mut self,
        poll: Poll<std::io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<R>> {
        match poll {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_one_that_reads_is_not() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut ours = StallTimeout::with_timeout(ours, Duration::from_secs(10));
        let chunk = [0u8; 1024];
        ours.write_all(&chunk).await.unwrap();
        // A slow reader: 1 KiB every 9 s never stalls a write for 10 s.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                theirs.read_exact(&mut buf).await.unwrap();
            }
            theirs
        });
        for _ in 0..3 {
            ours.write_all(&chunk).await.unwrap();
        }
        let _theirs = reader.await.unwrap();
        // Now nobody reads: the next write fails after the timeout.
        let started = tokio::time::Instant::now();
        let err = ours.write_all(&chunk).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}

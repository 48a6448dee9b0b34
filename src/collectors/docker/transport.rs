//! The connection under bollard: one fresh HTTP/1.1 connection per request,
//! to the unix socket or TCP address, whose reads stop at
//! [`MAX_ANSWER_BYTES`].
//!
//! bollard reads a whole answer into memory before decoding it, with no
//! limit of its own: a daemon (or whatever listens on its socket) answering
//! 100 MB to `/containers/json` cost that much and more. With the cap, such
//! an answer fails as reason `decode` after at most the cap is read. A new
//! connection per request is what makes the cap per answer; the collector
//! sends a handful of requests a round, over a local socket.

use std::io::{Error as IoError, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::errors::Error as BollardError;
use bollard::{BollardRequest, Docker};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::collectors::probing::daemon::Target;

/// The most read of one answer (headers and body). dockerd's list of 1,000
/// containers is about 2 MB; the decoded list takes several times its JSON
/// size, so the cap also bounds that.
pub const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;

/// A bollard client for `target` whose answers are capped (`timeout`: bollard's
/// own, whole seconds).
pub fn client(target: &Target, timeout: u64) -> Result<Docker, BollardError> {
    let target = match target {
        Target::Unix(_) | Target::Tcp(_) => target.clone(),
        Target::Unsupported(host) => {
            return Err(BollardError::UnsupportedURISchemeError { uri: host.clone() });
        }
    };
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| send(target.clone(), req),
        Some("http://docker"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
}

async fn send(target: Target, mut req: BollardRequest) -> Result<Response<Incoming>, BollardError> {
    // The request line in origin form, and a Host header (Go's server
    // refuses HTTP/1.1 without one).
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()?;
    *req.uri_mut() = path;
    req.headers_mut().insert(HOST, HeaderValue::from_static("docker"));
    match target {
        Target::Unix(path) => over(tokio::net::UnixStream::connect(path).await?, req).await,
        Target::Tcp(authority) => over(tokio::net::TcpStream::connect(authority).await?, req).await,
        Target::Unsupported(uri) => Err(BollardError::UnsupportedURISchemeError { uri }),
    }
}

async fn over<S>(stream: S, req: BollardRequest) -> Result<Response<Incoming>, BollardError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Capped {
        inner: stream,
        left: MAX_ANSWER_BYTES,
    });
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // Ends when the answer is read or dropped (the probe's timeout drops it).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender.send_request(req).await?)
}

/// A stream that fails reads once `left` bytes have been read.
struct Capped<S> {
    inner: S,
    left: u64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(IoError::new(
                ErrorKind::InvalidData,
                format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.left = self.left.saturating_sub(read);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

//! The TLS handshake of one accepted connection: at most
//! [`HANDSHAKES_PER_PEER`] at once per client address and
//! [`HANDSHAKE_TIMEOUT`] each, so that silent or slow clients hold neither a
//! shared gate nor an fd for long, and plain HTTP on the TLS port answered as
//! Go's server answers it. Certificate reloading lives with the rest of the
//! TLS config (`web_config`): every handshake asks its resolver.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake. A real client
/// on the node's network needs milliseconds.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Handshakes in progress at once from one client address; past this a new
/// connection from it is closed at once. A scraper needs one.
pub const HANDSHAKES_PER_PEER: usize = 4;

/// A TLS record starts with its content type; a handshake is 0x16.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The handshake under [`HANDSHAKE_TIMEOUT`].
pub async fn accept(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    stream.peek(&mut first).await?;
    if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        // Plain HTTP on the TLS port: say so, as Go's server does, instead of
        // a TLS alert that HTTP clients show as garbage.
        let _ = stream
            .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            .await;
        let _ = stream.shutdown().await;
        // Read what the client sent before closing: closing with unread data
        // would reset the connection, and the client might lose our answer.
        let mut sink = [0u8; 4096];
        let drain = async {
            let mut total = 0;
            while total < 64 * 1024 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        return Err(std::io::Error::other("plain HTTP request on the TLS port"));
    }
    acceptor.accept(stream).await
}

//! `--web.config.file`'s basic auth and `rate_limit` as one middleware.
//!
//! Order, cheapest first: credentials the login cache already verified pass
//! at once (no limit applies to them, so a flood cannot lock out a scraper
//! that logged in before); everything else is charged to `rate_limit` (429
//! when empty), and wrong or new credentials wait for one bcrypt in a bounded
//! queue ([`Logins`]: 503 at once when it is full, or when this client
//! address already has one waiting).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use tokio::sync::Semaphore;

use super::peers::PerPeer;
use crate::web_config::{BasicAuth, RateLimit};

/// Logins that may wait behind the one being verified; past this a login is
/// answered 503 at once instead of queueing.
pub const LOGIN_QUEUE: usize = 4;

/// The bcrypt queue: one verification at a time (~70 ms of one core at cost
/// 10), [`LOGIN_QUEUE`] waiting, one per client address, so wrong passwords
/// can neither pile up work nor take the CPU the collectors need, and one
/// pod cannot fill the queue alone.
pub(crate) struct Logins {
    auth: Arc<BasicAuth>,
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    waiting: Arc<PerPeer>,
}

/// What became of one login that the cache did not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    /// No room in the queue, or this address already waits (503).
    Busy,
}

impl Logins {
    pub(crate) fn new(auth: Arc<BasicAuth>) -> Arc<Logins> {
        Arc::new(Logins {
            auth,
            admitted: Arc::new(Semaphore::new(1 + LOGIN_QUEUE)),
            running: Arc::new(Semaphore::new(1)),
            waiting: PerPeer::new(1),
        })
    }

    async fn verify(&self, peer: Option<IpAddr>, user: String, password: Vec<u8>) -> Verdict {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Verdict::Busy;
        };
        let _waiting = match peer {
            Some(ip) => match self.waiting.take(ip) {
                Some(place) => Some(place),
                None => return Verdict::Busy,
            },
            None => None,
        };
        let Ok(_running) = self.running.clone().acquire_owned().await else {
            return Verdict::Denied;
        };
        if self.auth.clone().verify(user, password).await {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }
}

/// Paths served without credentials or rate limit: the health checks.
pub const OPEN_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

/// What the middleware checks; built from the web config.
#[derive(Clone)]
pub(crate) struct Gate {
    pub logins: Option<Arc<Logins>>,
    pub rate_limit: Option<Arc<RateLimit>>,
}

/// `Authorization: Basic base64(user:password)`, as Go's `Request.BasicAuth` reads it.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn unauthorized() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"node-sentinel\""),
    );
    response
}

fn refused(status: StatusCode, text: &'static str, retry_after_secs: u64) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs.max(1)),
    );
    response
}

pub(crate) async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    // The kubelet's probes carry no credentials (a probe cannot read a
    // Secret) and must not spend the rate limit's tokens; the answers name
    // at most a collector that is late.
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let credentials = basic_credentials(request.headers());
    if let (Some(logins), Some((user, password))) = (&gate.logins, &credentials)
        && logins.auth.cached(user, password)
    {
        return next.run(request).await;
    }
    if let Some(limit) = &gate.rate_limit
        && !limit.allow()
    {
        return refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests\n",
            limit.retry_after().as_secs(),
        );
    }
    let Some(logins) = &gate.logins else {
        return next.run(request).await;
    };
    let Some((user, password)) = credentials else {
        return unauthorized();
    };
    match logins.verify(peer(&request), user, password).await {
        Verdict::Allowed => next.run(request).await,
        Verdict::Denied => unauthorized(),
        Verdict::Busy => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many logins being verified; try again\n",
            1,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_like_go() {
        let ok = |v: &str| basic_credentials(&authorization(v));
        assert_eq!(
            ok(&format!("Basic {}", b64(b"alice:pa:ss"))),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            ok(&format!("bAsIc {}", b64(b"alice:"))),
            Some(("alice".into(), vec![]))
        );
        assert_eq!(ok(&format!("Basic {}", b64(b"alice"))), None, "no colon");
        assert_eq!(ok(&format!("Bearer {}", b64(b"a:b"))), None);
        assert_eq!(ok("Basic !!!"), None);
        assert_eq!(ok("Basic"), None);
        assert_eq!(
            ok(&format!("Basic {}", b64(b"\xff:x"))),
            None,
            "non-UTF-8 user"
        );
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn the_login_queue_is_bounded_and_one_per_address() {
        let hash = bcrypt::hash("pw", 10).unwrap();
        let web = crate::web_config::WebConfig::parse(
            &format!("basic_auth_users:\n  u: {hash}\n"),
            std::path::Path::new("."),
        )
        .unwrap();
        let logins = Logins::new(web.basic_auth.unwrap());
        let ip = |n: u8| Some(IpAddr::from([10, 0, 0, n]));
        let attempt = |peer| {
            let logins = logins.clone();
            tokio::spawn(async move { logins.verify(peer, "u".into(), b"wrong".to_vec()).await })
        };
        let started = std::time::Instant::now();
        let mut admitted = vec![attempt(ip(0))];
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The queue has room, but this address already has its place.
        let twice = logins.verify(ip(0), "u".into(), b"x".to_vec()).await;
        assert_eq!(twice, Verdict::Busy, "second from one address");
        // One running and LOGIN_QUEUE waiting, each from its own address.
        admitted.extend((1..=LOGIN_QUEUE as u8).map(|n| attempt(ip(n))));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let over = logins.verify(ip(99), "u".into(), b"x".to_vec()).await;
        assert_eq!(over, Verdict::Busy, "queue full");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(300),
            "answered at once"
        );
        for a in admitted {
            assert_eq!(a.await.unwrap(), Verdict::Denied);
        }
        assert!(logins.waiting.is_empty());
        let right = logins.verify(ip(1), "u".into(), b"pw".to_vec()).await;
        assert_eq!(right, Verdict::Allowed);
        assert!(logins.auth.cached("u", b"pw"));
    }
}

//! `--web.config.file`'s basic auth and `rate_limit` as one middleware.
//!
//! Order, cheapest first: credentials the login cache already verified pass
//! at once (no limit applies to them, so a flood cannot lock out a scraper
//! that logged in before); everything else is charged to `rate_limit` (429
//! when empty), and wrong or new credentials wait for one bcrypt in a bounded
//! queue (503 at once when it is full, or when this client address already
//! has one waiting).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::web_config::{BasicAuth, RateLimit, Verdict};

/// What the middleware checks; built from the web config.
#[derive(Clone)]
pub(crate) struct Gate {
    pub basic_auth: Option<Arc<BasicAuth>>,
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
    let credentials = basic_credentials(request.headers());
    if let (Some(auth), Some((user, password))) = (&gate.basic_auth, &credentials)
        && auth.cached(user, password)
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
    let Some(auth) = gate.basic_auth.clone() else {
        return next.run(request).await;
    };
    let Some((user, password)) = credentials else {
        return unauthorized();
    };
    match auth.check(peer(&request), user, password).await {
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
}

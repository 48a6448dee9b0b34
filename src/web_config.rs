//! `--web.config.file`: TLS and basic auth in the Prometheus exporter-toolkit
//! web-config YAML format, so a file written for node_exporter works here.
//!
//! Supported keys (everything else the toolkit knows is refused by name, and
//! unknown keys are refused like the toolkit does):
//! - `tls_server_config`: `cert_file`/`key_file` (or inline `cert`/`key`),
//!   `client_ca_file` (or inline `client_ca`), `client_auth_type`
//!   (`NoClientCert`, `RequireAndVerifyClientCert`, `VerifyClientCertIfGiven`),
//!   `min_version`/`max_version` (`TLS12`, `TLS13`: rustls has no older ones),
//!   `prefer_server_cipher_suites`.
//! - `http_server_config`: `headers` (the toolkit's five security headers,
//!   with its value checks) and `http2` (accepted; we serve HTTP/1.1 only).
//! - `basic_auth_users`: user → bcrypt hash. Every path is protected but
//!   the health checks `/-/healthy` and `/-/ready` (unlike the toolkit): the
//!   kubelet's probes cannot send credentials from a Secret.
//! - `rate_limit`: `interval` (a token every so long) and `burst`, the
//!   toolkit's token bucket, answered 429 when empty. Unlike the toolkit it
//!   is not charged for requests whose credentials the login cache already
//!   verified, so a flood cannot lock out a Prometheus that logged in before.
//!
//! Relative paths are resolved against the config file's directory, as the
//! toolkit does. Unlike the toolkit, which re-reads the file on every
//! connection, the file is read once at start-up: every problem surfaces
//! before the exporter serves or collects anything (exit code 2). The
//! certificate and key files (not the rest) are watched: when either changes
//! on disk (cert-manager rotating a Secret), the next handshake after a
//! one-second check serves the new pair; a pair that does not load (half
//! written, mismatched) is logged and the previous one kept.
//!
//! Basic auth costs one bcrypt per password not yet verified (~70 ms at cost
//! 10); how many run and wait is bounded where requests come in (`http`).
//!
//! Reading (`WebConfig::load`) is kept apart from parsing and validation
//! (`WebConfig::parse`, pure apart from reading the files the config names).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use ring::hmac;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// A problem with the web config file; its Display is the one line printed
/// before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {}: {problem}", file.display())]
pub struct Error {
    file: PathBuf,
    problem: String,
}

/// The validated web config: what the server needs, nothing left to check.
#[derive(Default)]
pub struct WebConfig {
    /// Serve HTTPS with this config; plain HTTP when None.
    pub tls: Option<Arc<ServerConfig>>,
    /// Extra headers on every response (401s included).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Require these credentials on every request; open when None.
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// `rate_limit`: requests not already vouched for by the login cache.
    pub rate_limit: Option<Arc<RateLimit>>,
}

impl fmt::Debug for WebConfig {
    // Hand-written so that no key or hash ever reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("basic_auth", &self.basic_auth.is_some())
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

// The file as written. Every struct denies unknown fields, so a typo is an
// error naming the key rather than a silently ignored setting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of web config sections")]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of rate_limit keys")]
struct RawRateLimit {
    interval: Option<String>,
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of tls_server_config keys")]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of http_server_config keys"
)]
struct RawHttp {
    // Accepted so toolkit files load; we serve HTTP/1.1 only.
    #[serde(rename = "http2")]
    _http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a config set, with the values it accepts
/// (empty: any value).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

impl WebConfig {
    /// Read and validate the file at `file`.
    pub fn load(file: &Path) -> Result<WebConfig, Error> {
        let fail = |problem: String| Error {
            file: file.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(file).map_err(|e| fail(format!("cannot read: {e}")))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).map_err(fail)
    }

    /// Validate `text`; relative paths in it are resolved against `dir`.
    /// The error is the problem alone (the caller adds the flag and file).
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
        // An empty file (or one of comments only) is a valid "no TLS, no auth".
        let raw: RawConfig = serde_yaml::from_str::<Option<RawConfig>>(text)
            .map_err(|e| format!("cannot parse: {e}"))?
            .unwrap_or_default();
        let rate_limit = raw.rate_limit.map(RateLimit::new).transpose()?.flatten();
        let http = raw.http_server_config.unwrap_or_default();
        Ok(WebConfig {
            tls: raw
                .tls_server_config
                .map(|t| tls_config(t, dir))
                .transpose()?
                .flatten(),
            headers: headers(http.headers.unwrap_or_default())?,
            basic_auth: raw
                .basic_auth_users
                .filter(|users| !users.is_empty())
                .map(BasicAuth::new)
                .transpose()?
                .map(Arc::new),
            rate_limit: rate_limit.map(Arc::new),
        })
    }
}

/// exporter-toolkit's `rate_limit`: a token bucket of `burst` tokens, one
/// more every `interval` (Go's `rate.NewLimiter(rate.Every(interval), burst)`).
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: f64,
    // (tokens, when they were counted)
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// None when `interval` is absent or zero: the toolkit then applies no limit.
    fn new(raw: RawRateLimit) -> Result<Option<RateLimit>, String> {
        let interval = match raw.interval.as_deref() {
            None => Duration::ZERO,
            Some(text) => crate::values::parse_duration(text)
                .map_err(|e| format!("rate_limit.interval: {e}"))?,
        };
        if interval.is_zero() {
            return Ok(None);
        }
        let burst = raw.burst.unwrap_or(0);
        if burst == 0 {
            return Err(
                "rate_limit.burst: must be at least 1 when rate_limit.interval is set (0 would refuse every request)"
                    .into(),
            );
        }
        Ok(Some(RateLimit {
            interval,
            burst: f64::from(burst),
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }))
    }

    /// Take a token if there is one.
    pub fn allow(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return false;
        };
        let now = Instant::now();
        let refill = now.duration_since(bucket.1).as_secs_f64() / self.interval.as_secs_f64();
        bucket.0 = (bucket.0 + refill).min(self.burst);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token: the Retry-After of a 429.
    pub fn retry_after(&self) -> Duration {
        self.interval
    }
}

fn headers(raw: BTreeMap<String, String>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in raw {
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<_> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "http_server_config.headers: header '{name}' can not be configured (allowed: {})",
                names.join(", ")
            ));
        };
        // The toolkit: a blank value leaves the header unset.
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers.{name}: '{value}' is not one of {}",
                allowed.join(", ")
            ));
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("http_server_config.headers.{name}: not a valid header value"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("http_server_config.headers: bad header name '{name}'"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// PEM text from an inline value or a file; `what` names the key for errors.
fn pem_source(
    inline: Option<String>,
    file: Option<PathBuf>,
    what: &str,
    dir: &Path,
) -> Result<Option<(Vec<u8>, String)>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: {what} and {what}_file are mutually exclusive"
        )),
        (Some(text), None) => Ok(Some((
            text.into_bytes(),
            format!("tls_server_config.{what}"),
        ))),
        (None, Some(path)) => {
            let path = dir.join(path);
            let origin = format!("tls_server_config.{what}_file {}", path.display());
            std::fs::read(&path)
                .map(|bytes| Some((bytes, origin.clone())))
                .map_err(|e| format!("{origin}: cannot read: {e}"))
        }
        (None, None) => Ok(None),
    }
}

fn certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{origin}: not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{origin}: no PEM certificate in it"));
    }
    Ok(certs)
}

fn tls_version(value: &str, key: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match value {
        "TLS12" => Ok(&TLS12),
        "TLS13" => Ok(&TLS13),
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{key}: {value} is not supported (only TLS12 and TLS13 are)"
        )),
        _ => Err(format!(
            "tls_server_config.{key}: unknown TLS version '{value}' (use TLS12 or TLS13)"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

/// The rustls server config, or None for a `tls_server_config` without any
/// certificate (the toolkit then serves plain HTTP too).
fn tls_config(raw: RawTls, dir: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
    let unsupported = [
        ("client_allowed_sans", raw.client_allowed_sans.is_some()),
        ("cipher_suites", raw.cipher_suites.is_some()),
        ("curve_preferences", raw.curve_preferences.is_some()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!(
            "tls_server_config.{key} is not supported by node-sentinel (rustls picks secure defaults)"
        ));
    }
    let client_auth = match raw.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        other @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other} accepts unverified client certificates and is not supported (use RequireAndVerifyClientCert)"
            ));
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: unknown value '{other}' (use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            ));
        }
    };
    let cert_file = raw.cert_file.as_ref().map(|p| dir.join(p));
    let key_file = raw.key_file.as_ref().map(|p| dir.join(p));
    let cert = pem_source(raw.cert, raw.cert_file, "cert", dir)?;
    let key = pem_source(raw.key, raw.key_file, "key", dir)?;
    let client_ca = pem_source(raw.client_ca, raw.client_ca_file, "client_ca", dir)?;
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if client_ca.is_none() && client_auth == ClientAuth::None => return Ok(None),
        (_, None) => return Err("tls_server_config: key_file (or key) is missing".into()),
        (None, _) => return Err("tls_server_config: cert_file (or cert) is missing".into()),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = certified_key(&cert, &key, &provider)?;
    let resolver: Arc<dyn ResolvesServerCert> = match (cert_file, key_file) {
        (Some(cert_path), Some(key_path)) => Arc::new(CertFiles::new(
            cert_path,
            key_path,
            provider.clone(),
            Arc::new(certified),
        )),
        _ => Arc::new(Fixed(Arc::new(certified))),
    };

    let min = tls_version(raw.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = tls_version(raw.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    let versions: Vec<&'static SupportedProtocolVersion> = [&TLS12, &TLS13]
        .into_iter()
        .filter(|v| {
            let rank = |x: &SupportedProtocolVersion| u16::from(x.version);
            rank(v) >= rank(min) && rank(v) <= rank(max)
        })
        .collect();
    if versions.is_empty() {
        return Err("tls_server_config: min_version is above max_version".into());
    }

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match (client_auth, client_ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(
                "tls_server_config: client_auth_type needs client_ca_file (or client_ca)".into(),
            );
        }
        (mode, Some((pem, origin))) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(&pem, &origin)? {
                roots
                    .add(ca)
                    .map_err(|e| format!("{origin}: unusable CA certificate: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::VerifyIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("{origin}: unusable CA certificates: {e}"))?,
            )
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    // We serve HTTP/1.1 only (http_server_config.http2 is accepted but inert).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    Ok(Some(Arc::new(config)))
}

/// A certificate chain and its key from PEM text (`(bytes, origin)` pairs,
/// the origin naming the key or file in errors).
fn certified_key(
    cert: &(Vec<u8>, String),
    key: &(Vec<u8>, String),
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = certificates(&cert.0, &cert.1)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key.0)
        .map_err(|e| format!("{}: no usable PEM private key in it: {e}", key.1))?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            format!("{} does not match the certificate in {}", key.1, cert.1)
        }
        other => format!("{} with {}: {other}", cert.1, key.1),
    })
}

/// An inline `cert`/`key` pair: nothing on disk to watch.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// How often the certificate files are looked at, at most: a handshake pays
/// two `stat`s at most once per this.
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a file's version: a Kubernetes Secret volume swaps a
/// symlink, so the inode changes even when the size and time do not.
type Stamp = Option<(SystemTime, u64, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.dev()))
}

/// `cert_file`/`key_file`, reloaded when either changes on disk.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    state: Mutex<CertState>,
}

struct CertState {
    current: Arc<CertifiedKey>,
    /// The stamps of the files last loaded (or last found unloadable).
    stamps: (Stamp, Stamp),
    checked: Instant,
}

impl fmt::Debug for CertFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertFiles")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl CertFiles {
    fn new(
        cert: PathBuf,
        key: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
        current: Arc<CertifiedKey>,
    ) -> CertFiles {
        let stamps = (stamp(&cert), stamp(&key));
        CertFiles {
            cert,
            key,
            provider,
            state: Mutex::new(CertState {
                current,
                stamps,
                checked: Instant::now(),
            }),
        }
    }

    fn load(&self) -> Result<CertifiedKey, String> {
        let read = |path: &Path, what: &str| {
            let origin = format!("tls_server_config.{what}_file {}", path.display());
            std::fs::read(path)
                .map(|bytes| (bytes, origin.clone()))
                .map_err(|e| format!("{origin}: cannot read: {e}"))
        };
        let cert = read(&self.cert, "cert")?;
        let key = read(&self.key, "key")?;
        certified_key(&cert, &key, &self.provider)
    }

    /// The pair to serve, reloaded first if the files changed.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().ok()?;
        if state.checked.elapsed() >= CERT_CHECK_INTERVAL {
            state.checked = Instant::now();
            let stamps = (stamp(&self.cert), stamp(&self.key));
            if stamps != state.stamps {
                state.stamps = stamps;
                match self.load() {
                    Ok(pair) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                        state.current = Arc::new(pair);
                    }
                    // Logged once per change of the files: the next change retries.
                    Err(e) => tracing::warn!(
                        "keeping the previous TLS certificate: --web.config.file {e}"
                    ),
                }
            }
        }
        Some(state.current.clone())
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// Basic auth against bcrypt hashes, with successful verifications cached
/// so that a scrape every 15 s does not pay bcrypt's ~70 ms (cost 10) each time.
///
/// The cache holds, per configured user, an HMAC (random per-process key) of
/// the last password that verified: bounded by the number of users, compared
/// in constant time, and useless to anyone reading the process's memory
/// without the key. Failed attempts are not cached: each costs one bcrypt,
/// and the caller bounds how many run (`http`'s login queue).
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    // Verified for unknown users; the hash of the highest cost configured,
    // so an unknown user never answers faster than the slowest known one.
    decoy_hash: String,
    cache_key: hmac::Key,
    verified: Mutex<HashMap<String, hmac::Tag>>,
}

impl BasicAuth {
    /// Check that every value is a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`, cost 4–31).
    fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        let mut decoy: Option<(u32, &String)> = None;
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(format!(
                    "basic_auth_users: user name '{user}' contains ':', which basic auth cannot carry"
                ));
            }
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                format!("basic_auth_users.{user}: not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
            })?;
            let cost = parts.get_cost();
            if !(4..=31).contains(&cost) {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (cost {cost} is outside 4..31)"
                ));
            }
            if decoy.is_none_or(|(c, _)| cost > c) {
                decoy = Some((cost, hash));
            }
        }
        let decoy_hash = decoy.map(|(_, h)| h.clone()).unwrap_or_default();
        let rng = ring::rand::SystemRandom::new();
        let cache_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| "cannot get random bytes for the credential cache".to_string())?;
        Ok(BasicAuth {
            users,
            decoy_hash,
            cache_key,
            verified: Mutex::new(HashMap::new()),
        })
    }

    fn cache_input(user: &str, password: &[u8]) -> Vec<u8> {
        // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
        let mut input = Vec::with_capacity(8 + user.len() + password.len());
        input.extend_from_slice(&(user.len() as u64).to_le_bytes());
        input.extend_from_slice(user.as_bytes());
        input.extend_from_slice(password);
        input
    }

    /// Whether this password verified before for this user (constant-time compare).
    pub fn cached(&self, user: &str, password: &[u8]) -> bool {
        let Ok(verified) = self.verified.lock() else {
            return false;
        };
        verified.get(user).is_some_and(|tag| {
            hmac::verify(
                &self.cache_key,
                &Self::cache_input(user, password),
                tag.as_ref(),
            )
            .is_ok()
        })
    }

    /// The slow path: one bcrypt verification (blocking; ~70 ms at cost 10).
    fn verify_blocking(&self, user: &str, password: &[u8]) -> bool {
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.decoy_hash.as_str(), false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok && let Ok(mut verified) = self.verified.lock() {
            let tag = hmac::sign(&self.cache_key, &Self::cache_input(user, password));
            verified.insert(user.to_string(), tag);
        }
        ok
    }

    /// One bcrypt verification off the runtime's threads; a success is cached.
    pub async fn verify(self: Arc<Self>, user: String, password: Vec<u8>) -> bool {
        tokio::task::spawn_blocking(move || self.verify_blocking(&user, &password))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/web_config, grown by
    /// `cargo +nightly fuzz run web_config`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/web_config");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                let _ = WebConfig::parse(text, Path::new("/nonexistent/fuzz"));
            }
            replayed += 1;
        }
        assert!(
            replayed >= 3,
            "{replayed} corpus files in {}",
            dir.display()
        );
    }

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web_config")
    }

    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(text, &fixtures())
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("accepted {text:?}: {c:?}"),
            Err(e) => e,
        }
    }

    const TLS: &str =
        "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\n";

    #[test]
    fn empty_file_means_plain_and_open() {
        for text in ["", "\n", "# nothing\n", "{}"] {
            let c = parse(text).unwrap();
            assert!(c.tls.is_none() && c.basic_auth.is_none() && c.headers.is_empty());
        }
        let c = parse("tls_server_config: {}\nbasic_auth_users: {}\n").unwrap();
        assert!(c.tls.is_none() && c.basic_auth.is_none());
    }

    #[test]
    fn tls_with_relative_paths() {
        let c = parse(TLS).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let c = parse(&format!("{TLS}  min_version: TLS13\n")).unwrap();
        assert!(c.tls.is_some());
        let c = parse(&format!(
            "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: test-only-ca.pem\n"
        ))
        .unwrap();
        assert!(c.tls.is_some());
    }

    #[test]
    fn inline_pem() {
        let cert = std::fs::read_to_string(fixtures().join("test-only-server.pem")).unwrap();
        let key = std::fs::read_to_string(fixtures().join("test-only-server.key")).unwrap();
        let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let text = format!(
            "tls_server_config:\n  cert: |\n{}  key: |\n{}",
            indent(&cert),
            indent(&key)
        );
        assert!(parse(&text).unwrap().tls.is_some());
    }

    #[test]
    fn problems_are_named() {
        let cases: &[(&str, &[&str])] = &[
            ("tls_server_config: [", &["cannot parse"]),
            ("bogus: 1\n", &["unknown field `bogus`"]),
            (
                "tls_server_config:\n  cert_fil: x\n",
                &["tls_server_config", "unknown field `cert_fil`"],
            ),
            (
                "http_server_config:\n  header: {}\n",
                &["unknown field `header`"],
            ),
            (
                "rate_limit:\n  interval: 1s\n",
                &["rate_limit.burst", "at least 1"],
            ),
            (
                "rate_limit:\n  interval: soon\n  burst: 3\n",
                &["rate_limit.interval"],
            ),
            ("rate_limit:\n  every: 1s\n", &["unknown field `every`"]),
            (
                "tls_server_config:\n  cert_file: missing.pem\n  key_file: test-only-server.key\n",
                &["tls_server_config.cert_file", "missing.pem", "cannot read"],
            ),
            (
                "tls_server_config:\n  cert_file: gen.sh\n  key_file: test-only-server.key\n",
                &[
                    "tls_server_config.cert_file",
                    "gen.sh",
                    "no PEM certificate",
                ],
            ),
            (
                "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.pem\n",
                &["tls_server_config.key_file", "private key"],
            ),
            (
                "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-client.key\n",
                &[
                    "test-only-client.key",
                    "does not match",
                    "test-only-server.pem",
                ],
            ),
            (
                "tls_server_config:\n  cert_file: test-only-server.pem\n",
                &["key_file", "missing"],
            ),
            (
                "tls_server_config:\n  key_file: test-only-server.key\n",
                &["cert_file", "missing"],
            ),
            (
                "tls_server_config:\n  cert: x\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\n",
                &["mutually exclusive"],
            ),
            (
                &format!("{TLS}  min_version: TLS10\n"),
                &["min_version", "TLS10", "not supported"],
            ),
            (
                &format!("{TLS}  max_version: SSL3\n"),
                &["max_version", "unknown TLS version"],
            ),
            (
                &format!("{TLS}  min_version: TLS13\n  max_version: TLS12\n"),
                &["min_version is above max_version"],
            ),
            (
                &format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n"),
                &["client_ca_file"],
            ),
            (
                &format!("{TLS}  client_auth_type: RequireAnyClientCert\n"),
                &["RequireAnyClientCert", "not supported"],
            ),
            (
                &format!("{TLS}  client_auth_type: Maybe\n"),
                &["client_auth_type", "unknown value 'Maybe'"],
            ),
            (
                &format!("{TLS}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
                &["cipher_suites", "not supported"],
            ),
            (
                "basic_auth_users:\n  alice: secret\n",
                &["basic_auth_users.alice", "not a bcrypt hash"],
            ),
            (
                "basic_auth_users:\n  alice: $1$abcdefgh$0123456789012345678901\n",
                &["basic_auth_users.alice", "not a bcrypt hash"],
            ),
            (
                "basic_auth_users:\n  alice: $2y$99$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n",
                &["basic_auth_users.alice", "cost 99"],
            ),
            (
                "basic_auth_users:\n  \"a:b\": $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n",
                &["contains ':'"],
            ),
            (
                "http_server_config:\n  headers:\n    Server: x\n",
                &["header 'Server' can not be configured"],
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                &["X-Frame-Options", "'allow'", "deny, sameorigin"],
            ),
        ];
        for (text, wants) in cases {
            let e = err(text);
            for want in *wants {
                assert!(e.contains(want), "{text:?}: {e:?} lacks {want:?}");
            }
            assert!(!e.contains('\n'), "{text:?}: multi-line error {e:?}");
        }
    }

    #[test]
    fn load_names_flag_and_file() {
        let e = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("--web.config.file /nonexistent/web.yml: cannot read"),
            "{s}"
        );
        let c = WebConfig::load(&fixtures().join("nonexistent")).unwrap_err();
        assert!(c.to_string().contains("nonexistent"));
    }

    #[test]
    fn headers_are_checked_and_kept() {
        let c = parse(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n    X-XSS-Protection: \"\"\n",
        )
        .unwrap();
        let names: Vec<_> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-security-policy", "x-frame-options"]);
    }

    #[tokio::test]
    async fn basic_auth_verifies_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = parse(&format!(
            "basic_auth_users:\n  alice: {hash}\n  bob: {hash}\n"
        ))
        .unwrap();
        let auth = c.basic_auth.unwrap();
        let check = |u: &str, p: &str| {
            let cached = auth.cached(u, p.as_bytes());
            let verified = auth.clone().verify(u.into(), p.as_bytes().to_vec());
            async move { cached || verified.await }
        };
        assert!(!auth.cached("alice", b"s3cret"));
        assert!(!check("alice", "wrong").await);
        assert!(!auth.cached("alice", b"wrong"));
        assert!(
            !check("mallory", "s3cret").await,
            "unknown user, decoy hash"
        );
        assert!(check("alice", "s3cret").await);
        assert!(auth.cached("alice", b"s3cret"));
        assert!(!auth.cached("bob", b"s3cret"), "cache is per user");
        assert!(!auth.cached("alice", b"s3cret2"));
        assert!(!check("alice", "s3cret2").await);
        assert!(check("alice", "s3cret").await);
    }

    #[test]
    fn decoy_is_the_costliest_hash() {
        let cheap = bcrypt::hash("a", 4).unwrap();
        let dear = bcrypt::hash("b", 6).unwrap();
        // The costlier user sorts last, so "first user" would pick the cheap one.
        let c = parse(&format!(
            "basic_auth_users:\n  aaa: {cheap}\n  zzz: {dear}\n  mmm: {cheap}\n"
        ))
        .unwrap();
        assert_eq!(c.basic_auth.unwrap().decoy_hash, dear);
    }

    #[test]
    fn rate_limit_is_a_token_bucket() {
        let c = parse("rate_limit:\n  interval: 100ms\n  burst: 2\n").unwrap();
        let limit = c.rate_limit.unwrap();
        assert!(limit.allow() && limit.allow());
        assert!(!limit.allow(), "burst spent");
        std::thread::sleep(Duration::from_millis(120));
        assert!(limit.allow(), "refilled");
        assert!(
            parse("rate_limit:\n  interval: 0s\n")
                .unwrap()
                .rate_limit
                .is_none()
        );
        assert!(parse("rate_limit: {}\n").unwrap().rate_limit.is_none());
    }

    #[test]
    fn certificate_files_reload_when_they_change() {
        let dir = std::env::temp_dir().join(format!("sentinel-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "test-only-server.pem",
            "test-only-server.key",
            "test-only-client.pem",
            "test-only-client.key",
        ] {
            std::fs::copy(fixtures().join(f), dir.join(f)).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let load = |c: &str, k: &str| {
            let read = |f: &str| (std::fs::read(dir.join(f)).unwrap(), f.to_string());
            Arc::new(certified_key(&read(c), &read(k), &provider).unwrap())
        };
        let server = load("test-only-server.pem", "test-only-server.key");
        let client = load("test-only-client.pem", "test-only-client.key");
        let files = CertFiles::new(
            dir.join("test-only-server.pem"),
            dir.join("test-only-server.key"),
            provider.clone(),
            server.clone(),
        );
        let serving = |f: &CertFiles| f.current().unwrap().cert[0].clone();
        assert_eq!(serving(&files), server.cert[0]);
        let age = |f: &CertFiles| f.state.lock().unwrap().checked -= CERT_CHECK_INTERVAL;
        // A half-rotated pair (new cert, old key) is refused; the old one stays.
        std::fs::copy(
            dir.join("test-only-client.pem"),
            dir.join("test-only-server.pem"),
        )
        .unwrap();
        age(&files);
        assert_eq!(serving(&files), server.cert[0]);
        std::fs::copy(
            dir.join("test-only-client.key"),
            dir.join("test-only-server.key"),
        )
        .unwrap();
        age(&files);
        assert_eq!(serving(&files), client.cert[0], "new pair served");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cache_input_is_unambiguous() {
        assert_ne!(
            BasicAuth::cache_input("ab", b"c"),
            BasicAuth::cache_input("a", b"bc")
        );
    }

    /// tests/fixtures/bad-input/web-config: one wrong field per file, each
    /// named by its `# expect:` line: every one is refused, naming the field.
    #[test]
    fn every_wrong_field_is_an_error_naming_it() {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input/web-config");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap();
            match WebConfig::parse(&text, &dir) {
                Ok(c) => panic!("{} accepted: {c:?}", path.display()),
                Err(e) => assert!(
                    e.contains(expect),
                    "{}: {e} (want {expect})",
                    path.display()
                ),
            }
            checked += 1;
        }
        assert!(checked >= 25, "{checked}");
    }
}

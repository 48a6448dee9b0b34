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
//! - `basic_auth_users`: user → bcrypt hash. Every path is protected,
//!   `/-/healthy` included, as the toolkit does.
//!
//! Relative paths are resolved against the config file's directory, as the
//! toolkit does. Unlike the toolkit, which re-reads the file on every
//! connection, the file is read once at start-up: every problem surfaces
//! before the exporter serves or collects anything (exit code 2), and a
//! changed certificate needs a restart.
//!
//! Reading (`WebConfig::load`) is kept apart from parsing and validation
//! (`WebConfig::parse`, pure apart from reading the files the config names).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue};
use ring::hmac;
use rustls::server::WebPkiClientVerifier;
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
}

impl fmt::Debug for WebConfig {
    // Hand-written so that no key or hash ever reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("basic_auth", &self.basic_auth.is_some())
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
    rate_limit: Option<serde_yaml::Value>,
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
        if raw.rate_limit.is_some() {
            return Err("rate_limit is not supported by node-sentinel".into());
        }
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
        })
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
    let cert = pem_source(raw.cert, raw.cert_file, "cert", dir)?;
    let key = pem_source(raw.key, raw.key_file, "key", dir)?;
    let client_ca = pem_source(raw.client_ca, raw.client_ca_file, "client_ca", dir)?;
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if client_ca.is_none() && client_auth == ClientAuth::None => return Ok(None),
        (_, None) => return Err("tls_server_config: key_file (or key) is missing".into()),
        (None, _) => return Err("tls_server_config: cert_file (or cert) is missing".into()),
    };
    let chain = certificates(&cert.0, &cert.1)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key.0)
        .map_err(|e| format!("{}: no usable PEM private key in it: {e}", key.1))?;

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

    let provider = Arc::new(rustls::crypto::ring::default_provider());
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
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                format!("{} does not match the certificate in {}", key.1, cert.1)
            }
            other => format!("{} with {}: {other}", cert.1, key.1),
        })?;
    // We serve HTTP/1.1 only (http_server_config.http2 is accepted but inert).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    Ok(Some(Arc::new(config)))
}

/// Basic auth against bcrypt hashes, with successful verifications cached
/// so that a scrape every 15 s does not pay bcrypt's ~70 ms (cost 10) each time.
///
/// The cache holds, per configured user, an HMAC (random per-process key) of
/// the last password that verified: bounded by the number of users, compared
/// in constant time, and useless to anyone reading the process's memory
/// without the key. Failed attempts are not cached: each costs one bcrypt,
/// with at most two running at once so guessing cannot starve the collectors.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    // Verified for unknown users so they cost the same as known ones.
    decoy_hash: String,
    cache_key: hmac::Key,
    verified: Mutex<HashMap<String, hmac::Tag>>,
    bcrypt_slots: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// Check that every value is a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`, cost 4–31).
    fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(format!(
                    "basic_auth_users: user name '{user}' contains ':', which basic auth cannot carry"
                ));
            }
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                format!("basic_auth_users.{user}: not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
            })?;
            if !(4..=31).contains(&parts.get_cost()) {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (cost {} is outside 4..31)",
                    parts.get_cost()
                ));
            }
        }
        let decoy_hash = users.values().next().cloned().unwrap_or_default();
        let rng = ring::rand::SystemRandom::new();
        let cache_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| "cannot get random bytes for the credential cache".to_string())?;
        Ok(BasicAuth {
            users,
            decoy_hash,
            cache_key,
            verified: Mutex::new(HashMap::new()),
            bcrypt_slots: tokio::sync::Semaphore::new(2),
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
    fn cached(&self, user: &str, password: &[u8]) -> bool {
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

    /// Whether `user`/`password` are valid credentials.
    pub async fn check(self: Arc<Self>, user: String, password: Vec<u8>) -> bool {
        if self.cached(&user, &password) {
            return true;
        }
        let Ok(_slot) = self.bcrypt_slots.acquire().await else {
            return false;
        };
        let auth = self.clone();
        tokio::task::spawn_blocking(move || auth.verify_blocking(&user, &password))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "rate_limit:\n  burst: 3\n",
                &["rate_limit", "not supported"],
            ),
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
        let check = |u: &str, p: &str| auth.clone().check(u.into(), p.as_bytes().to_vec());
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
    fn cache_input_is_unambiguous() {
        assert_ne!(
            BasicAuth::cache_input("ab", b"c"),
            BasicAuth::cache_input("a", b"bc")
        );
    }
}

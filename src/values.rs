//! Value parsers for flags: every bad value fails at start-up with a message
//! clap prints after the flag's name (exit code 2). A leaf module: collectors
//! use these without depending on the CLI as a whole.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use regex::Regex;

/// Parse a Prometheus-style duration: `500ms`, `15s`, `10m`, `1h30m`, `2d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration (use e.g. 500ms, 15s, 10m, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "y" => Duration::from_secs(365 * 86_400),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    if total > MAX_DURATION {
        return Err(format!("'{s}' is too long (at most 10y)"));
    }
    Ok(total)
}

/// Longer than any sensible interval, timeout or window, and far from where
/// `Instant + Duration` arithmetic overflows.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration that must be greater than zero (intervals, windows, timeouts).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be greater than zero"));
    }
    Ok(d)
}

/// A regular expression, compiled once at start-up.
pub fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        let first = e.to_string();
        let last = first.lines().last().unwrap_or("invalid").trim().to_string();
        format!("'{s}' is not a valid regular expression: {last}")
    })
}

/// A regular expression that must match the whole value (unit names and the like).
pub fn parse_anchored_regex(s: &str) -> Result<Regex, String> {
    parse_regex(s)?;
    parse_regex(&format!("^(?:{s})$"))
}

/// `:9899`, `0.0.0.0:9899`, `[::1]:9899`, `localhost:9899`.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| {
        format!("'{s}' is not a listen address ({why}; use e.g. :9899 or 127.0.0.1:9899)")
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| bad("bad host: only IP addresses and localhost"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

pub fn parse_telemetry_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s == "/" {
        return Err(format!("'{s}' must start with '/' and not be '/' itself"));
    }
    Ok(s.to_string())
}

pub fn parse_log_level(s: &str) -> Result<tracing::Level, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a log level (error, warn, info, debug, trace)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/values, grown by
    /// `cargo +nightly fuzz run values`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/values");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                for line in text.lines() {
                    let _ = parse_duration(line);
                    let _ = parse_positive_duration(line);
                    let _ = parse_listen_address(line);
                    let _ = parse_telemetry_path(line);
                    let _ = parse_log_level(line);
                    let _ = crate::collectors::kubelet::config::parse_quantity(line);
                }
            }
            replayed += 1;
        }
        assert!(
            replayed >= 2,
            "{replayed} corpus files in {}",
            dir.display()
        );
    }

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Some(Duration::from_millis(500))),
            ("15s", Some(Duration::from_secs(15))),
            ("10m", Some(Duration::from_secs(600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("2d", Some(Duration::from_secs(172_800))),
            ("0s", Some(Duration::ZERO)),
            ("", None),
            ("5", None),
            ("s", None),
            ("-5s", None),
            ("5 s", None),
            ("1.5s", None),
            ("99999999999999999999s", None),
            ("4294967295y", None),
            ("11y", None),
            ("10y", Some(Duration::from_secs(10 * 365 * 86_400))),
            ("5x", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).ok(), want, "{input}");
        }
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":9899").unwrap().port(), 9899);
        assert_eq!(
            parse_listen_address("127.0.0.1:1234").unwrap(),
            "127.0.0.1:1234".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        for bad in ["9899", "host.example:80", ":99999", ":"] {
            assert!(parse_listen_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regexes() {
        assert!(parse_regex("(").unwrap_err().contains("'('"));
        let r = parse_anchored_regex(r".+\.service").unwrap();
        assert!(r.is_match("docker.service"));
        assert!(!r.is_match("docker.service.d"));
    }
}

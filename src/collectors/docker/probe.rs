//! The API calls themselves (GET only) and the mapping of bollard's errors
//! onto the fixed failure reasons.

use std::error::Error as StdError;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::ListContainersOptions;

use crate::collectors::probing::daemon::Target;
use super::state::{
    Answer, Detail, Health, Listed, Op, PodContainer, Reason, container_name, state_index,
};

/// A client for `target`, its answers capped ([`super::transport`]).
pub fn client(target: &Target, timeout: Duration) -> Result<Docker, BollardError> {
    // bollard keeps whole seconds only (0 would fail every request) and only
    // covers the wait for headers; our own tokio timeout is the real limit,
    // so bollard's sits one second behind it.
    super::transport::client(target, timeout.as_secs() + 1)
}

/// One probe: the request for `op` (and, first, version negotiation when
/// `negotiate`). Returns the answer and the time the probe's own request
/// took. The caller bounds the whole future with its timeout.
pub async fn run(
    docker: &Docker,
    op: Op,
    inspect: Option<&str>,
    negotiate: bool,
) -> (Result<Answer, Reason>, Duration) {
    if negotiate {
        // Shares the client's version cell, so the negotiated version sticks.
        if let Err(e) = docker.clone().negotiate_version().await {
            return (Err(classify(&e)), Duration::ZERO);
        }
    }
    let started = Instant::now();
    let result = request(docker, op, inspect).await;
    (result.map_err(|e| classify(&e)), started.elapsed())
}

async fn request(docker: &Docker, op: Op, inspect: Option<&str>) -> Result<Answer, BollardError> {
    Ok(match op {
        Op::Ping => {
            docker.ping().await?;
            Answer::Ping
        }
        Op::Version => {
            let v = docker.version().await?;
            Answer::Version {
                version: v.version,
                api_version: v.api_version,
            }
        }
        Op::Info => Answer::Info {
            storage_driver: docker.info().await?.driver,
        },
        Op::Containers => {
            let options = ListContainersOptions {
                all: true,
                ..Default::default()
            };
            let list = docker.list_containers(Some(options)).await?;
            Answer::Containers(
                list.into_iter()
                    .filter_map(|c| {
                        let labels = c.labels.as_ref();
                        Some(Listed {
                            name: container_name(c.names.as_deref()?)?,
                            state: c.state.and_then(|s| state_index(s.as_ref())),
                            pod: PodContainer::from_labels(|k| labels?.get(k).cloned()),
                        })
                    })
                    .collect(),
            )
        }
        Op::Inspect => {
            let name = inspect.unwrap_or_default();
            let c = docker.inspect_container(name, None).await?;
            let health = c
                .state
                .and_then(|s| s.health)
                .and_then(|h| h.status)
                .and_then(|s| health(s.as_ref()));
            Answer::Inspect {
                name: name.to_string(),
                detail: Detail {
                    restart_count: c.restart_count.unwrap_or(0),
                    health,
                },
            }
        }
    })
}

fn health(status: &str) -> Option<Health> {
    match status {
        "starting" => Some(Health::Starting),
        "healthy" => Some(Health::Healthy),
        "unhealthy" => Some(Health::Unhealthy),
        // "none" or empty: no health check.
        _ => None,
    }
}

/// Map a bollard error onto a fixed reason.
pub fn classify(e: &BollardError) -> Reason {
    match e {
        BollardError::RequestTimeoutError => Reason::Timeout,
        BollardError::DockerResponseServerError { .. } => Reason::HttpStatus,
        BollardError::JsonDataError { .. }
        | BollardError::JsonSerdeError { .. }
        | BollardError::StrParseError { .. }
        | BollardError::APIVersionParseError {}
        | BollardError::HttpHeaderNotFoundError(_)
        | BollardError::HttpHeaderToStrError { .. } => Reason::Decode,
        BollardError::SocketNotFoundError(_) | BollardError::UnsupportedURISchemeError { .. } => {
            Reason::Connect
        }
        BollardError::HyperLegacyError { err } if err.is_connect() => Reason::Connect,
        BollardError::HyperResponseError { err } => hyper_reason(err),
        BollardError::IOError { err } => io_reason(err.kind()),
        other => chain_reason(other),
    }
}

/// Walk the source chain for the hyper or io error underneath.
fn chain_reason(e: &(dyn StdError + 'static)) -> Reason {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return hyper_reason(h);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_reason(io.kind());
        }
        source = s.source();
    }
    Reason::Io
}

fn hyper_reason(h: &hyper::Error) -> Reason {
    if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
        // Not HTTP at all (garbage bytes), or a malformed status line.
        Reason::Decode
    } else if h.is_timeout() {
        Reason::Timeout
    } else {
        // Closed early, reset, incomplete: whatever io error lies beneath.
        chain_reason(h)
    }
}

fn io_reason(kind: ErrorKind) -> Reason {
    match kind {
        ErrorKind::NotFound
        | ErrorKind::ConnectionRefused
        | ErrorKind::PermissionDenied
        | ErrorKind::AddrNotAvailable => Reason::Connect,
        ErrorKind::TimedOut => Reason::Timeout,
        ErrorKind::InvalidData => Reason::Decode,
        _ => Reason::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/docker_json, grown by
    /// `cargo +nightly fuzz run docker_json`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/docker_json");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            use bollard::models::{ContainerInspectResponse, ContainerSummary, SystemInfo, SystemVersion};
            let _ = serde_json::from_slice::<Vec<ContainerSummary>>(&data);
            let _ = serde_json::from_slice::<ContainerInspectResponse>(&data);
            let _ = serde_json::from_slice::<SystemInfo>(&data);
            let _ = serde_json::from_slice::<SystemVersion>(&data);
            replayed += 1;
        }
        assert!(replayed >= 4, "{replayed} corpus files in {}", dir.display());
    }

    #[test]
    fn reasons_for_bollard_errors() {
        let io = |k: ErrorKind| BollardError::IOError {
            err: std::io::Error::from(k),
        };
        let cases = [
            (BollardError::RequestTimeoutError, Reason::Timeout),
            (
                BollardError::DockerResponseServerError {
                    status_code: 500,
                    message: "boom".into(),
                },
                Reason::HttpStatus,
            ),
            (
                BollardError::JsonDataError {
                    message: "x".into(),
                    column: 1,
                },
                Reason::Decode,
            ),
            (
                BollardError::SocketNotFoundError("/x".into()),
                Reason::Connect,
            ),
            (io(ErrorKind::ConnectionRefused), Reason::Connect),
            (io(ErrorKind::PermissionDenied), Reason::Connect),
            (io(ErrorKind::ConnectionReset), Reason::Io),
            (io(ErrorKind::UnexpectedEof), Reason::Io),
            (BollardError::APIVersionParseError {}, Reason::Decode),
        ];
        for (err, want) in cases {
            assert_eq!(classify(&err), want, "{err:?}");
        }
    }

    #[test]
    fn health_statuses() {
        assert_eq!(health("healthy"), Some(Health::Healthy));
        assert_eq!(health("unhealthy"), Some(Health::Unhealthy));
        assert_eq!(health("starting"), Some(Health::Starting));
        assert_eq!(health("none"), None);
        assert_eq!(health(""), None);
    }
}

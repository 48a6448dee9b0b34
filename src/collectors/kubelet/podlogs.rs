//! Container logs as the kubelet lays them out:
//! `<podLogsDir>/<namespace>_<pod>_<uid>/<container>/<restart>.log`, the
//! live file being the highest `<restart>`; rotated generations
//! (`0.log.20240101-120000`, `.gz`) sit beside it. The kubelet rotates the
//! live file once it passes `containerLogMaxSize` (checking every 10 s, by
//! asking the runtime to reopen it), so a live log far above that size is a
//! rotation that is not happening.
//!
//! [`names`] turns a path into its namespace, pod and container (never the
//! uid: it changes with every pod); the logs collector labels the `pods`
//! group's per-file series with it too.

use std::path::Path;

/// A live log this many times containerLogMaxSize is not being rotated: a
/// working rotation keeps it within one check interval's writes of the limit.
pub const OVERSIZE_FACTOR: f64 = 2.0;

/// Namespace, pod and container of a kubelet container log path
/// (`.../pods/<namespace>_<pod>_<uid>/<container>/<file>`). Namespaces and
/// pod names are DNS names, so they hold no `_`; the uid neither.
pub fn names(path: &str) -> Option<(String, String, String)> {
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let container = parts.next()?;
    let pod_dir = parts.next()?;
    let parent = parts.next()?;
    if parent != "pods" || container.is_empty() || !file.contains(".log") {
        return None;
    }
    let mut fields = pod_dir.split('_');
    let (namespace, pod, uid) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || namespace.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((namespace.to_string(), pod.to_string(), container.to_string()))
}

/// One container's live log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLog {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub size: u64,
}

/// The restart number of a live log file name (`3.log` -> 3).
fn restart_of(file: &str) -> Option<u64> {
    file.strip_suffix(".log")?.parse().ok()
}

/// Pod directories and container directories read at most: a node runs
/// about a hundred pods; this bounds the walk on a node that does not.
pub const MAX_DIRS: usize = 4096;

/// The live log of every container under `dir` (a local path), largest
/// first. Reads two directory levels and stats one file per container;
/// never opens a log.
pub fn scan(dir: &Path) -> Vec<LiveLog> {
    let mut out = Vec::new();
    let Ok(pods) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut budget = MAX_DIRS;
    for pod in pods.filter_map(Result::ok) {
        let pod_name = pod.file_name().to_string_lossy().into_owned();
        let Ok(containers) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for container in containers.filter_map(Result::ok) {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let container_name = container.file_name().to_string_lossy().into_owned();
            let Ok(files) = std::fs::read_dir(container.path()) else {
                continue;
            };
            let live = files
                .filter_map(Result::ok)
                .filter_map(|f| Some((restart_of(&f.file_name().to_string_lossy())?, f)))
                .max_by_key(|(n, _)| *n);
            let Some((_, file)) = live else { continue };
            let Ok(meta) = std::fs::symlink_metadata(file.path()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let path = format!("pods/{pod_name}/{container_name}/x.log");
            if let Some((namespace, pod, container)) = names(&path) {
                out.push(LiveLog {
                    namespace,
                    pod,
                    container,
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.size
            .cmp(&a.size)
            .then_with(|| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_kubelet_layout() {
        let n = |p: &str| names(p).map(|(a, b, c)| format!("{a}/{b}/{c}"));
        assert_eq!(
            n("/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/coredns/0.log").as_deref(),
            Some("kube-system/coredns-5d78c9869d-abcde/coredns")
        );
        assert_eq!(n("/var/log/pods/ns_p_u/c/3.log.20240101-120000").as_deref(), Some("ns/p/c"));
        assert_eq!(n("/var/log/pods/ns_p_u/c/3.log.20240101-120000.gz").as_deref(), Some("ns/p/c"));
        for bad in [
            "/var/log/pods/ns_p/c/0.log",
            "/var/log/pods/ns_p_u_x/c/0.log",
            "/var/log/other/ns_p_u/c/0.log",
            "/var/log/pods/ns_p_u/c/notes.txt",
            "0.log",
            "/var/log/pods/_p_u/c/0.log",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    #[test]
    fn scan_finds_each_containers_live_log() {
        let dir = std::env::temp_dir().join(format!("sentinel-podlogs-{}", std::process::id()));
        let c = dir.join("default_web-1_uid1/app");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("0.log"), vec![b'x'; 50]).unwrap();
        std::fs::write(c.join("1.log"), vec![b'x'; 10]).unwrap();
        std::fs::write(c.join("1.log.20240101-120000"), vec![b'x'; 500]).unwrap();
        let d = dir.join("kube-system_dns_uid2/dns");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("0.log"), vec![b'x'; 20]).unwrap();
        std::fs::create_dir_all(dir.join("not-a-pod/x")).unwrap();
        std::fs::write(dir.join("not-a-pod/x/0.log"), b"x").unwrap();
        let got = scan(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let short: Vec<(String, u64)> = got.iter().map(|l| (format!("{}/{}/{}", l.namespace, l.pod, l.container), l.size)).collect();
        assert_eq!(short, [("kube-system/dns/dns".to_string(), 20), ("default/web-1/app".to_string(), 10)]);
    }
}

//! The one /proc reader: `PROCFS/PID/stat` (state, ppid, comm, starttime),
//! `PROCFS/PID/comm`, `PROCFS/PID/schedstat` (how often it got a CPU),
//! `PROCFS/stat` (`btime`), and a process's start time as unix seconds. Every collector that names or ages a process reads it here.
//!
//! Only `stat`, `comm` and `schedstat` are read, never `cmdline` or `environ`: those take
//! the target's mm lock and can hang behind a stuck process.
//!
//! Reading and parsing are apart: the parsers are pure, and bad input is an
//! error naming the file, never a panic.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// What we use of `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name (at most 15 bytes, may hold spaces and parentheses).
    pub comm: String,
    /// The single-letter state (R, S, D, Z, T, ...).
    pub state: char,
    pub ppid: i32,
    /// Start time in clock ticks after boot (field 22): with the PID, the
    /// process's identity (a reused PID has a new start time).
    pub starttime: u64,
}

/// Why a /proc file gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {why}")]
    Parse { path: PathBuf, why: &'static str },
}

impl ProcError {
    /// The process exited (or was never there): normal on a busy node, not a failure.
    pub fn is_gone(&self) -> bool {
        match self {
            // ESRCH: the process exited between the open and the read.
            ProcError::Read { source, .. } => {
                source.kind() == ErrorKind::NotFound || source.raw_os_error() == Some(3)
            }
            ProcError::Parse { .. } => false,
        }
    }

    /// A fixed kind for logs and failure counts.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcError::Read { source, .. } if source.kind() == ErrorKind::PermissionDenied => {
                "permission"
            }
            ProcError::Read { .. } => "read",
            ProcError::Parse { .. } => "parse",
        }
    }
}

/// Parse the text of `/proc/PID/stat`. The comm field may hold spaces and
/// parentheses (`a) b (c`), so it runs from the first `(` to the *last* `)`,
/// and the numbered fields are counted after it.
pub fn parse_stat(text: &[u8]) -> Result<Stat, &'static str> {
    let open = text
        .iter()
        .position(|b| *b == b'(')
        .ok_or("no '(' before comm")?;
    let close = text
        .iter()
        .rposition(|b| *b == b')')
        .ok_or("no ')' after comm")?;
    if close < open {
        return Err("no ')' after comm");
    }
    let pid = std::str::from_utf8(&text[..open])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("bad pid")?;
    let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&text[close + 1..]).map_err(|_| "fields after comm not text")?;
    // Field 3 (state) is the first after comm.
    let mut fields = rest.split_ascii_whitespace();
    let mut state_chars = fields.next().ok_or("no state field")?.chars();
    let state = state_chars.next().ok_or("no state field")?;
    if state_chars.next().is_some() {
        return Err("state is not one letter");
    }
    let ppid = fields
        .next()
        .ok_or("no ppid field")?
        .parse()
        .map_err(|_| "bad ppid")?;
    // Field 4 (ppid) taken; starttime is field 22.
    let starttime = fields
        .nth(22 - 5)
        .ok_or("no starttime field")?
        .parse()
        .map_err(|_| "bad starttime")?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid,
        starttime,
    })
}

/// `btime` (boot time, unix seconds) from the text of `/proc/stat`.
pub fn parse_btime(text: &str) -> Result<u64, &'static str> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .ok_or("no btime line")?
        .trim()
        .parse()
        .map_err(|_| "bad btime")
}

/// The third field of `/proc/PID/schedstat`: how many times the task has
/// been put on a CPU. A task that stays asleep keeps it; one that woke and
/// ran between two reads has a higher one (what the kernel's hung-task
/// detector checks, with its context-switch count). `None` when the kernel
/// keeps no such figure (it then prints zeros).
pub fn parse_schedstat_runs(text: &str) -> Result<Option<u64>, &'static str> {
    let mut fields = text.split_ascii_whitespace();
    let runtime: u64 = fields
        .next()
        .ok_or("empty schedstat")?
        .parse()
        .map_err(|_| "bad run time")?;
    let wait: u64 = fields
        .next()
        .ok_or("no wait field")?
        .parse()
        .map_err(|_| "bad wait time")?;
    let runs: u64 = fields
        .next()
        .ok_or("no run count field")?
        .parse()
        .map_err(|_| "bad run count")?;
    Ok(((runtime, wait, runs) != (0, 0, 0)).then_some(runs))
}

/// Unix start time of a process from the boot time and its `starttime`.
pub fn start_unix(btime: u64, starttime: u64, ticks_per_second: u64) -> f64 {
    btime as f64 + starttime as f64 / ticks_per_second.max(1) as f64
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `starttime`.
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

/// The most read of one `PID/stat`, `comm`, `schedstat` or `PROCFS/stat`
/// file: the kernel's are a few hundred bytes (`stat` a few KiB on a machine
/// with thousands of CPUs), so anything larger is not procfs.
pub const PROC_FILE_MAX: u64 = 256 * 1024;

/// Read at most `limit` bytes of `path`; a longer file is an `InvalidData`
/// error saying so. Files under --path.procfs are read with a bound: a
/// procfs that lies (a bind mount of something else, a FUSE file without
/// end) costs at most `limit` bytes of memory, never the whole file.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes: not a procfs file"),
        ));
    }
    Ok(bytes)
}

fn read(path: PathBuf) -> Result<(PathBuf, Vec<u8>), ProcError> {
    match read_bounded(&path, PROC_FILE_MAX) {
        Ok(bytes) => Ok((path, bytes)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// Read and parse `PROCFS/PID/stat`.
pub fn read_stat(procfs: &Path, pid: i32) -> Result<Stat, ProcError> {
    let (path, bytes) = read(procfs.join(pid.to_string()).join("stat"))?;
    parse_stat(&bytes).map_err(|why| ProcError::Parse { path, why })
}

/// `PROCFS/PID/comm`, without its newline.
pub fn read_comm(procfs: &Path, pid: i32) -> Result<String, ProcError> {
    let (_, bytes) = read(procfs.join(pid.to_string()).join("comm"))?;
    Ok(String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_string())
}

/// Read and parse `PROCFS/PID/schedstat` (see [`parse_schedstat_runs`]).
pub fn read_schedstat_runs(procfs: &Path, pid: i32) -> Result<Option<u64>, ProcError> {
    let (path, bytes) = read(procfs.join(pid.to_string()).join("schedstat"))?;
    let text = String::from_utf8_lossy(&bytes);
    parse_schedstat_runs(&text).map_err(|why| ProcError::Parse { path, why })
}

/// The boot time from `PROCFS/stat`.
pub fn read_btime(procfs: &Path) -> Result<u64, ProcError> {
    let (path, bytes) = read(procfs.join("stat"))?;
    let text = String::from_utf8_lossy(&bytes);
    parse_btime(&text).map_err(|why| ProcError::Parse { path, why })
}

/// The PIDs listed in `procfs` (thread-group leaders), in the kernel's order
/// (ascending). Entries that fail mid-listing end it, as a vanished directory would.
pub fn pids(procfs: &Path) -> Result<impl Iterator<Item = i32> + use<>, ProcError> {
    let dir = std::fs::read_dir(procfs).map_err(|source| ProcError::Read {
        path: procfs.to_path_buf(),
        source,
    })?;
    Ok(dir
        .map_while(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/stat, grown by
    /// `cargo +nightly fuzz run stat`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/stat");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let _ = parse_stat(&data);
            if let Ok(text) = std::str::from_utf8(&data) {
                let _ = parse_btime(text);
                let _ = parse_schedstat_runs(text);
            }
            replayed += 1;
        }
        assert!(
            replayed >= 5,
            "{replayed} corpus files in {}",
            dir.display()
        );
    }

    /// A full stat line whose comm is `comm`, state Z, ppid 7, starttime 12345.
    fn line(comm: &str) -> String {
        format!(
            "42 ({comm}) Z 7 42 42 0 -1 4194316 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0 \
             18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn comm_with_spaces_and_parens() {
        for comm in [
            "dockerd",
            "a) b (c",
            ") (",
            "(",
            ")",
            "x) Z 9 (y",
            "",
            "tmux: server",
        ] {
            let st = parse_stat(line(comm).as_bytes()).unwrap();
            assert_eq!(
                (st.pid, st.comm.as_str(), st.state, st.ppid, st.starttime),
                (42, comm, 'Z', 7, 12345),
                "{comm:?}"
            );
        }
        // Non-UTF-8 comm bytes survive, lossily.
        let raw = line("@@").replace("@@", "\u{1}").into_bytes();
        let raw: Vec<u8> = raw
            .into_iter()
            .flat_map(|b| if b == 1 { vec![0xff, 0xfe] } else { vec![b] })
            .collect();
        assert_eq!(parse_stat(&raw).unwrap().comm, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn truncated_or_garbled_lines_are_errors_not_panics() {
        let full = line("a) b");
        for cut in 0..full.len() {
            // Every prefix that stops before starttime is complete is an error.
            let prefix = &full.as_bytes()[..cut];
            if cut <= full.find(" 12345").unwrap() + 1 {
                assert!(parse_stat(prefix).is_err(), "{:?}", &full[..cut]);
            }
        }
        for bad in [
            "",
            "garbage",
            "42 (trunc",
            "42 trunc) S 1",
            ")( 42",
            "x (a) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "42 (a) SS 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "42 (a) S x 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "42 (a) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 -5",
        ] {
            assert!(parse_stat(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schedstat_run_counts() {
        assert_eq!(
            parse_schedstat_runs("190391748 21569387 439\n"),
            Ok(Some(439))
        );
        // CONFIG_SCHED_INFO off, or sched_info disabled: all zeros.
        assert_eq!(parse_schedstat_runs("0 0 0\n"), Ok(None));
        assert!(parse_schedstat_runs("").is_err());
        assert!(parse_schedstat_runs("1 2").is_err());
        assert!(parse_schedstat_runs("1 2 x").is_err());
        assert!(read_schedstat_runs(Path::new("/proc"), std::process::id() as i32).is_ok());
    }

    #[test]
    fn btime_and_start_time() {
        let stat = "cpu  1 2 3\nintr 5\nctxt 9\nbtime 1700000000\nprocesses 4\n";
        assert_eq!(parse_btime(stat), Ok(1_700_000_000));
        assert!(parse_btime("cpu 1\n").is_err());
        assert!(parse_btime("btime soon\n").is_err());
        assert!(parse_btime("").is_err());
        assert_eq!(start_unix(1_700_000_000, 250, 100), 1_700_000_002.5);
        assert_eq!(start_unix(10, 5, 0), 15.0, "no division by zero");
    }

    #[test]
    fn reads_this_process() {
        let procfs = Path::new("/proc");
        let me = std::process::id() as i32;
        let st = read_stat(procfs, me).unwrap();
        assert_eq!(st.pid, me);
        assert_eq!(st.comm, read_comm(procfs, me).unwrap());
        let btime = read_btime(procfs).unwrap();
        let start = start_unix(btime, st.starttime, ticks_per_second());
        let now = crate::collector::unix_now();
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
        assert!(pids(procfs).unwrap().any(|p| p == me));
        // A PID that is not there is "gone", not a failure.
        let e = read_stat(procfs, i32::MAX).unwrap_err();
        assert!(e.is_gone(), "{e}");
        let e = read_btime(Path::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/stat"), "{e}");
    }
}

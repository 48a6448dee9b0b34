//! One `/dev/kmsg` record, parsed, and the fixed table of reasons a kernel
//! message counts as a problem. Pure: no I/O, table-tested below.
//!
//! A record, as the kernel documents it (Documentation/ABI/testing/dev-kmsg):
//! `PRI,SEQ,USEC,FLAGS[,more];MESSAGE\n` and then dictionary lines, each
//! starting with a space (` SUBSYSTEM=...`, ` DEVICE=...`). `PRI` is
//! `facility << 3 | level`. Bytes outside printable ASCII (and `\` itself)
//! arrive escaped as `\xNN`. FLAGS is `-` for a whole record; kernels
//! before 4.9 also split continued lines (`pr_cont`) into a first part
//! flagged `c` and further parts flagged `+` (see [`Assembler`]).
//!
//! Only facility 0 (`LOG_KERN`) is the kernel: a write to /dev/kmsg from
//! userspace is stored with facility `LOG_USER` (1) unless it names another
//! non-zero one, never 0, so a process cannot forge a kernel problem.

/// The reasons a kernel record counts, in export order (METRICS.md, kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    TaskHung,
    OomKill,
    SoftLockup,
    RcuStall,
    FsError,
    FsRemountReadonly,
    IoError,
    NfsNotResponding,
    ConntrackFull,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::TaskHung,
        Reason::OomKill,
        Reason::SoftLockup,
        Reason::RcuStall,
        Reason::FsError,
        Reason::FsRemountReadonly,
        Reason::IoError,
        Reason::NfsNotResponding,
        Reason::ConntrackFull,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Reason::TaskHung => "task_hung",
            Reason::OomKill => "oom_kill",
            Reason::SoftLockup => "soft_lockup",
            Reason::RcuStall => "rcu_stall",
            Reason::FsError => "fs_error",
            Reason::FsRemountReadonly => "fs_remount_readonly",
            Reason::IoError => "io_error",
            Reason::NfsNotResponding => "nfs_not_responding",
            Reason::ConntrackFull => "conntrack_full",
        }
    }

    pub fn from_label(label: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.label() == label)
    }
}

/// A parsed record header and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub facility: u32,
    pub level: u8,
    pub seq: u64,
    /// Microseconds since boot (the kernel's local clock).
    pub usec: u64,
    pub flag: Flag,
    /// The message, `\xNN` escapes undone (lossily, for invalid UTF-8).
    pub message: String,
}

impl Record {
    /// Whether the kernel wrote it (facility 0), not a process.
    pub fn is_kernel(&self) -> bool {
        self.facility == 0
    }
}

/// How a record relates to its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// A whole record (`-`).
    Whole,
    /// The first part of a continued line (`c`, kernels before 4.9).
    First,
    /// A further part of a continued line (`+`, kernels before 4.9).
    Continued,
}

/// Why a read did not parse as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no ';' between header and message")]
    NoSeparator,
    #[error("header field {0} missing or not a number")]
    BadField(&'static str),
    #[error("unknown flags {0:?}")]
    BadFlags(String),
}

/// Parse one record as read from /dev/kmsg (one `read` returns one record).
pub fn parse(raw: &[u8]) -> Result<Record, ParseError> {
    let sep = raw
        .iter()
        .position(|b| *b == b';')
        .ok_or(ParseError::NoSeparator)?;
    let header = String::from_utf8_lossy(&raw[..sep]);
    let mut fields = header.split(',');
    let mut number = |name: &'static str| -> Result<u64, ParseError> {
        fields
            .next()
            .and_then(|f| f.trim().parse::<u64>().ok())
            .ok_or(ParseError::BadField(name))
    };
    let pri = number("PRI")?;
    let seq = number("SEQ")?;
    let usec = number("USEC")?;
    let flag = match fields.next().map(str::trim) {
        // Fields after FLAGS (e.g. `caller=T12`) are ignored.
        Some("-") | None => Flag::Whole,
        Some("c") => Flag::First,
        Some("+") => Flag::Continued,
        Some(other) => return Err(ParseError::BadFlags(other.chars().take(16).collect())),
    };
    let body = &raw[sep + 1..];
    // The message ends at the first newline; the dictionary lines follow it.
    let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    Ok(Record {
        facility: u32::try_from(pri >> 3).unwrap_or(u32::MAX),
        level: (pri & 7) as u8,
        seq,
        usec,
        flag,
        message: unescape(&body[..end]),
    })
}

/// Undo the kernel's `\xNN` escaping.
fn unescape(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\'
            && text.get(i + 1) == Some(&b'x')
            && let Some(byte) = text
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A problem found in a kernel message: its reason and the process it names
/// as hung or killed (empty when it names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub comm: String,
}

/// The kernel's comm is at most 15 bytes; anything longer is not one.
const COMM_MAX: usize = 15;

/// The reason a kernel message counts as, if any. The formats are the
/// kernel's own (quoted in the tests); the next line of a multi-line report
/// (stack traces, "task:... state:D", oom-killer's prelude) never matches, so
/// each event counts once.
pub fn classify(message: &str) -> Option<Problem> {
    let m = message.trim_end();
    let bare = |reason| {
        Some(Problem {
            reason,
            comm: String::new(),
        })
    };
    // kernel/hung_task.c: "INFO: task %s:%d blocked for more than %ld seconds."
    if let Some(rest) = m.strip_prefix("INFO: task ")
        && let Some((task, _)) = rest.split_once(" blocked for more than ")
        && let Some((comm, pid)) = task.rsplit_once(':')
        && is_pid(pid)
        && comm.len() <= COMM_MAX
    {
        return Some(Problem {
            reason: Reason::TaskHung,
            comm: comm.to_string(),
        });
    }
    // mm/oom_kill.c: "%s: Killed process %d (%s) total-vm:%lukB, ..." where the
    // prefix is "Out of memory" or "Memory cgroup out of memory".
    if let Some((_, rest)) = m.split_once(": Killed process ")
        && let Some((pid, rest)) = rest.split_once(" (")
        && is_pid(pid)
        && let Some((comm, _)) = rest.rsplit_once(") total-vm:")
        && comm.len() <= COMM_MAX
    {
        return Some(Problem {
            reason: Reason::OomKill,
            comm: comm.to_string(),
        });
    }
    // kernel/watchdog.c: "BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]",
    // after the "watchdog: " prefix.
    if m.strip_prefix("watchdog: ").unwrap_or(m).starts_with("BUG: soft lockup - CPU#") {
        return bare(Reason::SoftLockup);
    }
    // kernel/rcu/tree_stall.h: "INFO: %s self-detected stall on CPU" and
    // "INFO: %s detected stalls on CPUs/tasks:", after "rcu: " since 5.x.
    if let Some(rest) = m.strip_prefix("rcu: ").unwrap_or(m).strip_prefix("INFO: ")
        && let Some((flavour, what)) = rest.split_once(' ')
        && flavour.starts_with("rcu_")
        && (what.starts_with("self-detected stall on CPU")
            || what.starts_with("detected stalls on CPUs/tasks")
            || what.starts_with("detected stalls on tasks"))
    {
        return bare(Reason::RcuStall);
    }
    if is_remount_readonly(m) {
        return bare(Reason::FsRemountReadonly);
    }
    if is_fs_error(m) {
        return bare(Reason::FsError);
    }
    if is_io_error(m) {
        return bare(Reason::IoError);
    }
    // fs/nfs/client.c: "%s: server %s not responding, still trying" / "timed out".
    if let Some(rest) = m.strip_prefix("nfs: server ")
        && let Some((server, _)) = rest.split_once(" not responding")
        && !server.is_empty()
        && !server.contains(' ')
    {
        return bare(Reason::NfsNotResponding);
    }
    // net/netfilter/nf_conntrack_core.c: "nf_conntrack: table full, dropping
    // packet", printed with the module's prefix in front again on newer kernels.
    if m.strip_prefix("nf_conntrack: ").is_some_and(|rest| {
        rest.strip_prefix("nf_conntrack: ")
            .unwrap_or(rest)
            .starts_with("table full, dropping packet")
    }) {
        return bare(Reason::ConntrackFull);
    }
    None
}

fn is_pid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// "EXT4-fs (sda1): " and friends: the filesystem's tag and device, then the text.
fn fs_device_message<'a>(m: &'a str, tag: &str) -> Option<&'a str> {
    let rest = m.strip_prefix(tag)?.strip_prefix(" (")?;
    let (device, text) = rest.split_once("): ")?;
    (!device.is_empty() && !device.contains(' ')).then_some(text)
}

fn is_remount_readonly(m: &str) -> bool {
    // fs/ext4/super.c (and ext3/ext2 alike): "Remounting filesystem read-only".
    for tag in ["EXT4-fs", "EXT3-fs", "EXT2-fs"] {
        if let Some(text) = fs_device_message(m, tag) {
            return text.starts_with("Remounting filesystem read-only")
                || text.starts_with("error: remounting filesystem read-only");
        }
    }
    // fs/btrfs: "BTRFS info (device %s): forced readonly".
    m.starts_with("BTRFS ")
        && m.contains(" (device ")
        && (m.ends_with("): forced readonly") || m.contains("): forced readonly"))
}

fn is_fs_error(m: &str) -> bool {
    // fs/ext4/super.c: "EXT4-fs error (device %s): %s:%d: ..." (ext2/3 alike).
    for tag in ["EXT4-fs error (device ", "EXT3-fs error (device ", "EXT2-fs error (device "] {
        if m.starts_with(tag) {
            return true;
        }
    }
    // fs/btrfs/messages.c: "BTRFS error (device %s...): ..." and "BTRFS critical ...".
    if m.starts_with("BTRFS error (device ") || m.starts_with("BTRFS critical (device ") {
        return true;
    }
    // fs/xfs: "XFS (%s): Corruption detected...", "Metadata corruption detected",
    // "Filesystem has been shut down due to ..." / "Corruption of in-memory data".
    if let Some(text) = fs_device_message(m, "XFS") {
        return text.starts_with("Corruption")
            || text.starts_with("Metadata corruption detected")
            || text.starts_with("Filesystem has been shut down")
            || text.starts_with("Metadata CRC error detected");
    }
    false
}

fn is_io_error(m: &str) -> bool {
    // block/blk-core.c: "%s error, dev %s, sector %llu op 0x%x:(%s) ...", the
    // first %s a block status ("I/O", "critical medium", "timeout"...); before
    // 5.x after "blk_update_request: " or "print_req_error: ".
    let m = m
        .strip_prefix("blk_update_request: ")
        .or_else(|| m.strip_prefix("print_req_error: "))
        .unwrap_or(m);
    let Some((status, rest)) = m.split_once(" error, dev ") else {
        return false;
    };
    const STATUSES: [&str; 9] = [
        "I/O",
        "critical medium",
        "critical target",
        "critical nexus",
        "critical space allocation",
        "recoverable transport",
        "critical protection",
        "timeout",
        "operation not supported",
    ];
    STATUSES.contains(&status)
        && rest
            .split_once(", sector ")
            .is_some_and(|(dev, _)| !dev.is_empty() && !dev.contains(' '))
}

/// Joins the parts of a continued line (kernels before 4.9 deliver a
/// `pr_cont` line as a `c` record and `+` records) so the whole line is
/// classified once. Bounded: a line longer than [`LINE_MAX`] is cut.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: Option<Record>,
}

/// The kernel's own limit on a log line is 1024 bytes; twice that is generous.
pub const LINE_MAX: usize = 2048;

impl Assembler {
    /// Feed one record; returns the whole records it completes (zero to two:
    /// a pending line ends when a record that does not continue it arrives).
    pub fn push(&mut self, record: Record) -> Vec<Record> {
        let mut done = Vec::new();
        match record.flag {
            Flag::Continued => match &mut self.pending {
                Some(p) if p.facility == record.facility => {
                    let room = LINE_MAX.saturating_sub(p.message.len());
                    p.message.extend(record.message.chars().take(room));
                }
                // A continuation without its start (lost to an overrun): on its own.
                _ => {
                    done.extend(self.pending.take());
                    done.push(record);
                }
            },
            Flag::First => {
                done.extend(self.pending.take());
                self.pending = Some(record);
            }
            Flag::Whole => {
                done.extend(self.pending.take());
                done.push(record);
            }
        }
        done
    }

    /// The pending line, when no more parts are coming for now.
    pub fn flush(&mut self) -> Option<Record> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_as_documented() {
        let r = parse(b"6,343,1339367,-;EXT4-fs (vda): mounted filesystem r/w.\n").unwrap();
        assert_eq!(
            r,
            Record {
                facility: 0,
                level: 6,
                seq: 343,
                usec: 1339367,
                flag: Flag::Whole,
                message: "EXT4-fs (vda): mounted filesystem r/w.".into(),
            }
        );
        assert!(r.is_kernel());
        // Dictionary lines after the message are not part of it.
        let r = parse(
            b"5,340,1273419,-;virtio_blk virtio1: [vda] new size\n SUBSYSTEM=virtio\n DEVICE=+virtio:virtio1\n",
        )
        .unwrap();
        assert_eq!(r.message, "virtio_blk virtio1: [vda] new size");
        // A write from userspace: `echo '<3>x' > /dev/kmsg` is LOG_USER (1).
        let r = parse(b"11,900,5,-;fake: Killed process 1 (x) total-vm:1kB\n").unwrap();
        assert_eq!((r.facility, r.level, r.is_kernel()), (1, 3, false));
        // Extra header fields (caller id) are ignored; continuation flags.
        let r = parse(b"4,7,8,c,caller=T12;part one").unwrap();
        assert_eq!((r.flag, r.message.as_str()), (Flag::First, "part one"));
        assert_eq!(parse(b"4,8,9,+;two").unwrap().flag, Flag::Continued);
        // Escapes undone; a ';' in the message is kept.
        let r = parse(b"6,1,2,-;a\\x20b\\\\x;c\\xzz\\x").unwrap();
        assert_eq!(r.message, "a b\\\\x;c\\xzz\\x");
        assert_eq!(parse(b"6,1,2,-;\\xe2\\x9c\\x93").unwrap().message, "\u{2713}");
        // No newline at the end is fine.
        assert_eq!(parse(b"0,1,2,-;").unwrap().message, "");
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for (raw, want) in [
            (&b""[..], ParseError::NoSeparator),
            (b"6,1,2,-", ParseError::NoSeparator),
            (b";msg", ParseError::BadField("PRI")),
            (b"x,1,2,-;m", ParseError::BadField("PRI")),
            (b"6;m", ParseError::BadField("SEQ")),
            (b"6,1;m", ParseError::BadField("USEC")),
            (b"6,-1,2,-;m", ParseError::BadField("SEQ")),
            (b"6,1,2,?;m", ParseError::BadFlags("?".into())),
        ] {
            assert_eq!(parse(raw), Err(want), "{:?}", String::from_utf8_lossy(raw));
        }
        // A huge PRI does not overflow.
        assert_eq!(
            parse(b"18446744073709551615,1,2,-;m").unwrap().facility,
            u32::MAX
        );
    }

    fn class(m: &str) -> Option<(&'static str, String)> {
        classify(m).map(|p| (p.reason.label(), p.comm))
    }

    #[test]
    fn every_reason_in_the_kernels_own_words() {
        for (message, reason, comm) in [
            ("INFO: task dockerd:1234 blocked for more than 120 seconds.", "task_hung", "dockerd"),
            ("INFO: task kworker/u8:2:97 blocked for more than 122 seconds.", "task_hung", "kworker/u8:2"),
            ("INFO: task a b:c:7 blocked for more than 5 seconds.", "task_hung", "a b:c"),
            (
                "Out of memory: Killed process 4242 (stress) total-vm:1056832kB, anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:2100kB oom_score_adj:0",
                "oom_kill",
                "stress",
            ),
            (
                "Memory cgroup out of memory: Killed process 77 (containerd) total-vm:1kB, anon-rss:0kB",
                "oom_kill",
                "containerd",
            ),
            ("Memory cgroup out of memory: Killed process 7 (a (b)) total-vm:1kB", "oom_kill", "a (b)"),
            ("watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:123]", "soft_lockup", ""),
            ("BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:0]", "soft_lockup", ""),
            ("rcu: INFO: rcu_sched self-detected stall on CPU", "rcu_stall", ""),
            ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu_stall", ""),
            ("INFO: rcu_sched detected stalls on CPUs/tasks: { 1} (detected by 0, t=5252 jiffies)", "rcu_stall", ""),
            ("rcu: INFO: rcu_tasks detected stalls on tasks:", "rcu_stall", ""),
            (
                "EXT4-fs error (device loop0): ext4_lookup:1855: inode #2: comm ls: iget: checksum invalid",
                "fs_error",
                "",
            ),
            ("EXT4-fs error (device sda1) in ext4_reserve_inode_write:5732: IO failure", "fs_error", ""),
            ("BTRFS error (device sdb): bdev /dev/sdb errs: wr 0, rd 1, flush 0", "fs_error", ""),
            ("BTRFS critical (device dm-0): corrupt leaf: root=2 block=123", "fs_error", ""),
            ("XFS (sdc1): Corruption detected. Unmount and run xfs_repair", "fs_error", ""),
            ("XFS (dm-3): Metadata corruption detected at xfs_inode_buf_verify+0x1", "fs_error", ""),
            ("XFS (sdd): Filesystem has been shut down due to log error (0x2).", "fs_error", ""),
            ("EXT4-fs (loop0): Remounting filesystem read-only", "fs_remount_readonly", ""),
            ("EXT3-fs (sda2): error: remounting filesystem read-only", "fs_remount_readonly", ""),
            ("BTRFS info (device sdb): forced readonly", "fs_remount_readonly", ""),
            (
                "I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2",
                "io_error",
                "",
            ),
            ("blk_update_request: I/O error, dev sdb, sector 0 op 0x0:(READ) flags 0x0", "io_error", ""),
            ("print_req_error: I/O error, dev nvme0n1, sector 8", "io_error", ""),
            ("critical medium error, dev sdc, sector 12345 op 0x0:(READ)", "io_error", ""),
            ("nfs: server 10.0.0.5 not responding, still trying", "nfs_not_responding", ""),
            ("nfs: server nas.example not responding, timed out", "nfs_not_responding", ""),
            ("nf_conntrack: nf_conntrack: table full, dropping packet", "conntrack_full", ""),
            ("nf_conntrack: table full, dropping packet.", "conntrack_full", ""),
        ] {
            assert_eq!(class(message), Some((reason, comm.to_string())), "{message}");
        }
    }

    #[test]
    fn near_misses_do_not_count() {
        for message in [
            // The lines around a hung-task report, and a longer mutex hint (6.14+).
            "task:dockerd         state:D stack:0     pid:1234  tgid:1234  ppid:1      flags:0x00004002",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            "INFO: task dockerd:1234 is blocked on a mutex likely owned by task containerd:99.",
            "INFO: task dockerd:12x4 blocked for more than 120 seconds.",
            "INFO: task averyveryverylongcomm:1 blocked for more than 120 seconds.",
            "Future hung task reports are suppressed, see sysctl kernel.hung_task_warnings",
            // The oom-killer's prelude and aftermath: one kill counts once.
            "stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,task=stress,pid=4242,uid=0",
            "oom_reaper: reaped process 4242 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
            "Killed process 4242 (stress) total-vm:1kB",
            "Out of memory: Killed process abc (stress) total-vm:1kB",
            "oom_control is deprecated and will be removed.",
            // Watchdog and RCU lines that are not stalls.
            "watchdog: Watchdog detected hard LOCKUP on cpu 2",
            "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
            "rcu: Hierarchical RCU implementation.",
            "rcu: \tRCU event tracing is enabled.",
            "rcu: INFO: rcu_sched: dump of stall messages",
            // Filesystems working normally, a remount by a person, the daily error count.
            "EXT4-fs (vda): mounted filesystem 00000000-0000 r/w without journal. Quota mode: none.",
            "EXT4-fs (vda): re-mounted 00000000-0000 ro. Quota mode: none.",
            "EXT4-fs (sda1): error count since last fsck: 3",
            "EXT4-fs (sda1): initial error at time 1700000000: ext4_lookup:1855: inode 2",
            "EXT4-fs warning (device sda1): ext4_dx_add_entry:2461: Directory index full!",
            "XFS (sdc1): Mounting V5 Filesystem",
            "BTRFS info (device sdb): disk space caching is enabled",
            // Not a block-layer request error (the buffer layer repeats it).
            "Buffer I/O error on dev sda1, logical block 0, async page read",
            "I/O error, dev , sector 1",
            "blk_update_request: write error, dev sda, sector 8",
            // NFS recovering, conntrack's other tables.
            "nfs: server 10.0.0.5 OK",
            "lockd: server 10.0.0.5 not responding, still trying",
            "nf_conntrack: expectation table full",
            "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
            "nf_conntrack version 0.5.0 (65536 buckets, 262144 max)",
            // Quoted by something else.
            "audit: comment=\"INFO: task x:1 blocked for more than 1 seconds.\"",
            "",
        ] {
            assert_eq!(class(message), None, "{message:?}");
        }
    }

    #[test]
    fn continued_lines_are_classified_whole() {
        let rec = |flag, seq, m: &str| Record {
            facility: 0,
            level: 3,
            seq,
            usec: seq,
            flag,
            message: m.into(),
        };
        let mut a = Assembler::default();
        assert!(a.push(rec(Flag::First, 1, "INFO: task dockerd:12")).is_empty());
        assert!(a.push(rec(Flag::Continued, 2, "34 blocked for more")).is_empty());
        assert!(a.push(rec(Flag::Continued, 3, " than 120 seconds.")).is_empty());
        let done = a.push(rec(Flag::Whole, 4, "next"));
        assert_eq!(done.len(), 2);
        assert_eq!(
            classify(&done[0].message).map(|p| p.comm),
            Some("dockerd".into())
        );
        assert_eq!(done[1].message, "next");
        // A lone continuation (its start lost) stands alone; a pending line flushes.
        assert_eq!(a.push(rec(Flag::Continued, 5, "x")).len(), 1);
        assert!(a.push(rec(Flag::First, 6, "y")).is_empty());
        assert_eq!(a.flush().map(|r| r.message), Some("y".into()));
        assert_eq!(a.flush(), None);
        // Bounded.
        a.push(rec(Flag::First, 7, "z"));
        for i in 0..100 {
            a.push(rec(Flag::Continued, 8 + i, &"w".repeat(100)));
        }
        assert_eq!(a.flush().map(|r| r.message.len()), Some(LINE_MAX));
    }

    /// The fuzz target's corpus (fuzz/corpus/record, grown by
    /// `cargo +nightly fuzz run record`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/record");
        let mut replayed = 0;
        let mut hung = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut assembler = Assembler::default();
            let mut whole = Vec::new();
            for raw in data.split(|b| *b == 0) {
                if let Ok(rec) = parse(raw) {
                    whole.extend(assembler.push(rec));
                }
            }
            whole.extend(assembler.flush());
            hung += whole
                .iter()
                .filter_map(|r| classify(&r.message))
                .filter(|p| p.reason == Reason::TaskHung)
                .count();
            replayed += 1;
        }
        assert!(replayed >= 8, "{replayed} corpus files in {}", dir.display());
        // The seeds "hung" and "continued" each hold one hung task.
        assert!(hung >= 2, "{hung}");
    }

    #[test]
    fn every_reason_has_one_label() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_label(r.label()), Some(r));
        }
        assert_eq!(Reason::from_label("nonesuch"), None);
    }
}

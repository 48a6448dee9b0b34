//! The KubeletConfiguration: reading it (a YAML or JSON file plus its drop-in
//! directory) and what the kubelet makes of its eviction, image-GC and log
//! rotation settings. Parsing is pure ([`parse_merged`], [`Settings::from_doc`]);
//! [`Source`] does the I/O and notices changes.
//!
//! The kubelet's own rules, reproduced:
//! - Drop-ins (`--config-dir`, files ending `.conf`) are applied in name
//!   order over the main file: maps merge key by key, lists and scalars are
//!   replaced.
//! - `evictionHard` absent: the defaults (memory.available 100Mi,
//!   nodefs.available 10%, nodefs.inodesFree 5%, imagefs.available 15%).
//!   Present: only the signals it names have a hard threshold, the others
//!   are off (0), unless `mergeDefaultEvictionSettings` is true. That is the
//!   trap this collector exists to show: a node with only
//!   `memory.available` set fills its disk to 100% without DiskPressure.
//! - A threshold of `0` or `0%` is no threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_yaml::Value;

/// The eviction signals this collector knows, with what they measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodefsAvailable,
    NodefsInodesFree,
    ImagefsAvailable,
    ImagefsInodesFree,
}

/// Which filesystem a signal is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    Node,
    Image,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Signal::MemoryAvailable,
        Signal::NodefsAvailable,
        Signal::NodefsInodesFree,
        Signal::ImagefsAvailable,
        Signal::ImagefsInodesFree,
    ];

    /// The kubelet's name for it, also the `signal` label.
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodefsAvailable => "nodefs.available",
            Signal::NodefsInodesFree => "nodefs.inodesFree",
            Signal::ImagefsAvailable => "imagefs.available",
            Signal::ImagefsInodesFree => "imagefs.inodesFree",
        }
    }

    fn from_name(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|sig| sig.name() == s)
    }

    /// The filesystem it is about; `None` for memory.
    pub fn fs(self) -> Option<Fs> {
        match self {
            Signal::MemoryAvailable => None,
            Signal::NodefsAvailable | Signal::NodefsInodesFree => Some(Fs::Node),
            Signal::ImagefsAvailable | Signal::ImagefsInodesFree => Some(Fs::Image),
        }
    }

    /// Counted in inodes rather than bytes.
    pub fn inodes(self) -> bool {
        matches!(self, Signal::NodefsInodesFree | Signal::ImagefsInodesFree)
    }

    /// The kubelet's default hard threshold, if the signal has one.
    fn default_hard(self) -> Option<Threshold> {
        match self {
            Signal::MemoryAvailable => Some(Threshold::Quantity(100.0 * MI)),
            Signal::NodefsAvailable => Some(Threshold::Percent(10.0)),
            Signal::NodefsInodesFree => Some(Threshold::Percent(5.0)),
            Signal::ImagefsAvailable => Some(Threshold::Percent(15.0)),
            Signal::ImagefsInodesFree => None,
        }
    }

    /// The signals with a default: left without a hard threshold, they are "disabled".
    pub fn has_default(self) -> bool {
        self.default_hard().is_some()
    }
}

const MI: f64 = 1024.0 * 1024.0;

/// One threshold as written: an absolute quantity (bytes, or inodes for the
/// inode signals) or a percentage of the filesystem's (or memory's) capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Quantity(f64),
    Percent(f64),
}

impl Threshold {
    /// The threshold in bytes or inodes, against a capacity of `capacity`.
    pub fn resolve(self, capacity: f64) -> f64 {
        match self {
            Threshold::Quantity(q) => q,
            Threshold::Percent(p) => capacity * p / 100.0,
        }
    }
}

/// What the collector uses of the kubelet's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub hard: BTreeMap<Signal, Threshold>,
    pub soft: BTreeMap<Signal, Threshold>,
    /// evictionSoftGracePeriod, seconds.
    pub soft_grace: BTreeMap<Signal, f64>,
    pub image_gc_high_percent: f64,
    pub image_gc_low_percent: f64,
    /// containerLogMaxSize in bytes; `None` when rotation is off.
    pub container_log_max_size: Option<f64>,
    pub container_log_max_files: u64,
    /// podLogsDir (host path).
    pub pod_logs_dir: String,
    pub container_runtime_endpoint: Option<String>,
}

impl Default for Settings {
    /// The kubelet's defaults: what it runs with when no config file is read.
    fn default() -> Self {
        Settings {
            hard: Signal::ALL
                .into_iter()
                .filter_map(|s| Some((s, s.default_hard()?)))
                .collect(),
            soft: BTreeMap::new(),
            soft_grace: BTreeMap::new(),
            image_gc_high_percent: 85.0,
            image_gc_low_percent: 80.0,
            container_log_max_size: Some(10.0 * MI),
            container_log_max_files: 5,
            pod_logs_dir: "/var/log/pods".into(),
            container_runtime_endpoint: None,
        }
    }
}

/// Why a config could not be used: always names the file (and the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parse one file's text (YAML or JSON: JSON is YAML) into a document.
pub fn parse_doc(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        let first = e.to_string();
        let line = first.lines().next().unwrap_or("invalid").to_string();
        ConfigError(format!("kubelet config {}: {line}", path.display()))
    })?;
    match doc {
        Value::Mapping(_) => Ok(doc),
        // An empty drop-in is allowed; a scalar or list is not a config.
        Value::Null => Ok(Value::Mapping(Default::default())),
        _ => Err(ConfigError(format!(
            "kubelet config {}: not a KubeletConfiguration (the document is not a mapping)",
            path.display()
        ))),
    }
}

/// The kubelet's drop-in merge: maps merge key by key, all else is replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Parse and merge a main file and its drop-ins (already in order).
pub fn parse_merged(files: &[(PathBuf, String)]) -> Result<Settings, ConfigError> {
    let mut doc = Value::Mapping(Default::default());
    for (path, text) in files {
        merge(&mut doc, parse_doc(path, text)?);
    }
    let origin = files
        .first()
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_default();
    Settings::from_doc(&doc, &origin)
}

/// A Kubernetes quantity (`500Mi`, `1Gi`, `10G`, `1.5e3`, `100k`) as a number.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let (num, suffix) = if let Some(exp) = suffix.strip_prefix(['e', 'E'])
        && !exp.is_empty()
        && exp.trim_start_matches(['+', '-']).chars().all(|c| c.is_ascii_digit())
    {
        let e: i32 = exp.parse().ok()?;
        (num.parse::<f64>().ok()? * 10f64.powi(e), "")
    } else {
        (num.parse::<f64>().ok()?, suffix)
    };
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => MI,
        "Gi" => MI * 1024.0,
        "Ti" => MI * MI,
        "Pi" => MI * MI * 1024.0,
        "Ei" => MI * MI * MI,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return None,
    };
    let v = num * factor;
    v.is_finite().then_some(v)
}

/// An eviction threshold value; `Ok(None)` for a zero threshold (none).
fn parse_threshold(s: &str) -> Result<Option<Threshold>, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a percentage"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("'{s}' is not between 0% and 100%"));
        }
        return Ok((p > 0.0).then_some(Threshold::Percent(p)));
    }
    let q = parse_quantity(s).ok_or_else(|| format!("'{s}' is not a quantity (e.g. 500Mi, 1Gi) or a percentage"))?;
    if q < 0.0 {
        return Err(format!("'{s}' is negative"));
    }
    Ok((q > 0.0).then_some(Threshold::Quantity(q)))
}

/// A Go duration as the kubelet writes it (`1m30s`, `90s`, `1h`, `500ms`).
fn parse_go_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(total)
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Settings {
    /// The settings of a merged document; `origin` names the file in errors.
    pub fn from_doc(doc: &Value, origin: &str) -> Result<Settings, ConfigError> {
        let bad = |key: &str, why: String| ConfigError(format!("kubelet config {origin}: {key}: {why}"));
        let mut s = Settings::default();
        // A key of the wrong type is an error, never silently the default:
        // the thresholds we would hold against then are not the kubelet's.
        let text_of = |key: &str| -> Result<Option<&str>, ConfigError> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(bad(key, "not a string".into())),
            }
        };
        if let Some(kind) = text_of("kind")?
            && kind != "KubeletConfiguration"
        {
            return Err(ConfigError(format!(
                "kubelet config {origin}: kind is {kind}, not KubeletConfiguration"
            )));
        }
        let thresholds = |key: &str| -> Result<Option<BTreeMap<Signal, Option<Threshold>>>, ConfigError> {
            let Some(v) = doc.get(key) else { return Ok(None) };
            let Value::Mapping(m) = v else {
                if v.is_null() {
                    return Ok(None);
                }
                return Err(bad(key, "not a map of signal to threshold".into()));
            };
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let name = k.as_str().unwrap_or_default();
                // Signals this collector does not hold against a filesystem
                // (pid.available, containerfs.*) are the kubelet's business.
                let Some(signal) = Signal::from_name(name) else { continue };
                let text = string_of(v).ok_or_else(|| bad(&format!("{key}.{name}"), "not a string".into()))?;
                let t = parse_threshold(&text).map_err(|why| bad(&format!("{key}.{name}"), why))?;
                out.insert(signal, t);
            }
            Ok(Some(out))
        };
        let merge_defaults = match doc.get("mergeDefaultEvictionSettings") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("mergeDefaultEvictionSettings", "not true or false".into())),
        };
        if let Some(hard) = thresholds("evictionHard")? {
            if !merge_defaults {
                s.hard.clear();
            }
            for (signal, t) in hard {
                match t {
                    Some(t) => s.hard.insert(signal, t),
                    None => s.hard.remove(&signal),
                };
            }
        }
        if let Some(soft) = thresholds("evictionSoft")? {
            s.soft = soft.into_iter().filter_map(|(k, t)| Some((k, t?))).collect();
        }
        let grace = match doc.get("evictionSoftGracePeriod") {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => return Err(bad("evictionSoftGracePeriod", "not a map of signal to duration".into())),
        };
        if let Some(m) = grace {
            for (k, v) in m {
                let name = k.as_str().unwrap_or_default();
                let Some(signal) = Signal::from_name(name) else { continue };
                let text = string_of(v).unwrap_or_default();
                let secs = parse_go_duration(&text).ok_or_else(|| {
                    bad(&format!("evictionSoftGracePeriod.{name}"), format!("'{text}' is not a duration (e.g. 1m30s)"))
                })?;
                s.soft_grace.insert(signal, secs);
            }
        }
        let percent = |key: &str, default: f64| -> Result<f64, ConfigError> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => match v.as_f64() {
                    Some(p) if (0.0..=100.0).contains(&p) => Ok(p),
                    _ => Err(bad(key, format!("{} is not a percentage between 0 and 100", string_of(v).unwrap_or_else(|| "the value".into())))),
                },
            }
        };
        s.image_gc_high_percent = percent("imageGCHighThresholdPercent", 85.0)?;
        s.image_gc_low_percent = percent("imageGCLowThresholdPercent", 80.0)?;
        if let Some(v) = doc.get("containerLogMaxSize").filter(|v| !v.is_null()) {
            let text = string_of(v).unwrap_or_default();
            let q = parse_quantity(&text)
                .filter(|q| *q >= 0.0)
                .ok_or_else(|| bad("containerLogMaxSize", format!("'{text}' is not a quantity (e.g. 10Mi)")))?;
            s.container_log_max_size = (q > 0.0).then_some(q);
        }
        if let Some(v) = doc.get("containerLogMaxFiles").filter(|v| !v.is_null()) {
            s.container_log_max_files = v
                .as_u64()
                .ok_or_else(|| bad("containerLogMaxFiles", "not a whole number".into()))?;
        }
        if let Some(dir) = text_of("podLogsDir")?
            && !dir.is_empty()
        {
            s.pod_logs_dir = dir.to_string();
        }
        s.container_runtime_endpoint = text_of("containerRuntimeEndpoint")?.map(str::to_string);
        Ok(s)
    }
}

/// What identifies one version of the files: change any and they are read again.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The config files as last read, re-read when any changes.
#[derive(Debug, Default)]
pub struct Source {
    stamp: Option<Stamp>,
    last: Option<Result<Settings, ConfigError>>,
}

/// The files of one config: the main file and its `.conf` drop-ins in name order.
fn files(main: &Path, dropins: &Path) -> Vec<PathBuf> {
    let mut out = vec![main.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dropins) {
        let mut conf: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        conf.sort();
        out.extend(conf);
    }
    out
}

/// How many drop-ins are read at most (a directory of thousands is a mistake).
const MAX_DROPINS: usize = 64;
/// The largest config file read; a KubeletConfiguration is a few KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

impl Source {
    /// The settings from `main` (a local path) and the drop-ins in `dropins`,
    /// read again only if a file's size or mtime changed, or the set of files.
    pub fn read(&mut self, main: &Path, dropins: &Path) -> Result<Settings, ConfigError> {
        let mut list = files(main, dropins);
        list.truncate(MAX_DROPINS + 1);
        let stamp: Stamp = list
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p).ok();
                (
                    p.clone(),
                    m.as_ref().map_or(0, |m| m.len()),
                    m.and_then(|m| m.modified().ok()),
                )
            })
            .collect();
        if self.stamp.as_ref() == Some(&stamp)
            && let Some(last) = &self.last
        {
            return last.clone();
        }
        let result = read_all(&list);
        self.stamp = Some(stamp);
        self.last = Some(result.clone());
        result
    }
}

fn read_all(list: &[PathBuf]) -> Result<Settings, ConfigError> {
    let mut texts = Vec::new();
    for p in list {
        let size = std::fs::metadata(p)
            .map_err(|e| ConfigError(format!("kubelet config {}: {e}", p.display())))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(ConfigError(format!(
                "kubelet config {}: {size} bytes, larger than a KubeletConfiguration can be ({MAX_FILE_BYTES})",
                p.display()
            )));
        }
        let text = std::fs::read_to_string(p)
            .map_err(|e| ConfigError(format!("kubelet config {}: {e}", p.display())))?;
        texts.push((p.clone(), text));
    }
    parse_merged(&texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/kubelet_config, grown by
    /// `cargo +nightly fuzz run kubelet_config`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kubelet_config");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                let files: Vec<_> = text
                    .split('\0')
                    .enumerate()
                    .map(|(i, t)| (PathBuf::from(format!("/fuzz/{i}.yaml")), t.to_string()))
                    .collect();
                let _ = parse_merged(&files);
                for line in text.lines() {
                    let _ = parse_quantity(line);
                }
            }
            replayed += 1;
        }
        assert!(replayed >= 4, "{replayed} corpus files in {}", dir.display());
    }

    fn settings(files: &[&str]) -> Result<Settings, ConfigError> {
        let texts: Vec<(PathBuf, String)> = files
            .iter()
            .enumerate()
            .map(|(i, t)| (PathBuf::from(format!("/f{i}")), t.to_string()))
            .collect();
        parse_merged(&texts)
    }

    #[test]
    fn quantities() {
        let cases = [
            ("500Mi", Some(500.0 * MI)),
            ("1Gi", Some(1024.0 * MI)),
            ("1G", Some(1e9)),
            ("100k", Some(1e5)),
            ("1.5Gi", Some(1.5 * 1024.0 * MI)),
            ("1e3", Some(1000.0)),
            ("2E", Some(2e18)),
            ("1000", Some(1000.0)),
            ("", None),
            ("Mi", None),
            ("5 Mi", None),
            ("5MB", None),
            ("lots", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s), want, "{s}");
        }
    }

    #[test]
    fn defaults_without_eviction_hard() {
        let s = settings(&["kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.hard[&Signal::NodefsAvailable], Threshold::Percent(10.0));
        assert_eq!(s.hard[&Signal::ImagefsAvailable], Threshold::Percent(15.0));
        assert_eq!(s.hard[&Signal::NodefsInodesFree], Threshold::Percent(5.0));
        assert_eq!(s.hard[&Signal::MemoryAvailable], Threshold::Quantity(100.0 * MI));
        assert!(!s.hard.contains_key(&Signal::ImagefsInodesFree));
    }

    #[test]
    fn a_partial_eviction_hard_turns_the_others_off() {
        let s = settings(&["evictionHard:\n  memory.available: 500Mi\n"]).unwrap();
        assert_eq!(s.hard.len(), 1);
        assert_eq!(s.hard[&Signal::MemoryAvailable], Threshold::Quantity(500.0 * MI));
        // ... unless the defaults are merged in.
        let s = settings(&["mergeDefaultEvictionSettings: true\nevictionHard:\n  memory.available: 500Mi\n"]).unwrap();
        assert_eq!(s.hard.len(), 4);
        // A zero threshold is none.
        let s = settings(&["evictionHard:\n  nodefs.available: \"0%\"\n  imagefs.available: \"0\"\n  nodefs.inodesFree: 1000\n"]).unwrap();
        assert_eq!(s.hard.len(), 1);
        assert_eq!(s.hard[&Signal::NodefsInodesFree], Threshold::Quantity(1000.0));
    }

    #[test]
    fn soft_thresholds_and_grace_periods() {
        let s = settings(&[
            "evictionSoft:\n  nodefs.available: 20%\n  imagefs.available: 2Gi\nevictionSoftGracePeriod:\n  nodefs.available: 1m30s\n  imagefs.available: 2m\n",
        ])
        .unwrap();
        assert_eq!(s.soft[&Signal::NodefsAvailable], Threshold::Percent(20.0));
        assert_eq!(s.soft[&Signal::ImagefsAvailable], Threshold::Quantity(2.0 * 1024.0 * MI));
        assert_eq!(s.soft_grace[&Signal::NodefsAvailable], 90.0);
        assert_eq!(s.soft_grace[&Signal::ImagefsAvailable], 120.0);
        assert_eq!(s.hard, Settings::default().hard, "soft leaves hard at its defaults");
    }

    #[test]
    fn dropins_merge_maps_and_replace_the_rest() {
        let main = r#"{"kind":"KubeletConfiguration","evictionHard":{"memory.available":"100Mi","nodefs.available":"10%"},"imageGCHighThresholdPercent":85,"containerLogMaxSize":"10Mi"}"#;
        let s = settings(&[
            main,
            "evictionHard:\n  nodefs.available: 30%\n",
            "imageGCHighThresholdPercent: 70\ncontainerLogMaxSize: 50Mi\n",
            "",
        ])
        .unwrap();
        assert_eq!(s.hard.len(), 2);
        assert_eq!(s.hard[&Signal::NodefsAvailable], Threshold::Percent(30.0));
        assert_eq!(s.hard[&Signal::MemoryAvailable], Threshold::Quantity(100.0 * MI));
        assert_eq!(s.image_gc_high_percent, 70.0);
        assert_eq!(s.container_log_max_size, Some(50.0 * MI));
    }

    #[test]
    fn bad_input_names_the_file_and_key() {
        let err = |t: &str| settings(&[t]).unwrap_err().0;
        let e = err("evictionHard:\n  nodefs.available: lots\n");
        assert!(e.contains("/f0") && e.contains("evictionHard.nodefs.available") && e.contains("'lots'"), "{e}");
        let e = err("evictionHard:\n  nodefs.available: 120%\n");
        assert!(e.contains("between 0% and 100%"), "{e}");
        let e = err(": : [garbage");
        assert!(e.starts_with("kubelet config /f0: ") && !e.contains('\n'), "{e}");
        let e = err("- a list\n- of things\n");
        assert!(e.contains("not a mapping"), "{e}");
        let e = err("kind: Pod\n");
        assert!(e.contains("not KubeletConfiguration"), "{e}");
        let e = err("imageGCHighThresholdPercent: 150\n");
        assert!(e.contains("imageGCHighThresholdPercent"), "{e}");
        let e = err("evictionSoftGracePeriod:\n  nodefs.available: soon\n");
        assert!(e.contains("evictionSoftGracePeriod.nodefs.available"), "{e}");
        let e = err("containerLogMaxSize: big\n");
        assert!(e.contains("containerLogMaxSize"), "{e}");
        // Signals the collector does not use are left alone.
        assert!(settings(&["evictionHard:\n  pid.available: 10%\n"]).is_ok());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Some(90.0));
        assert_eq!(parse_go_duration("1h"), Some(3600.0));
        assert_eq!(parse_go_duration("500ms"), Some(0.5));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("90"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn thresholds_resolve_against_capacity() {
        assert_eq!(Threshold::Percent(10.0).resolve(1000.0), 100.0);
        assert_eq!(Threshold::Quantity(5.0).resolve(1000.0), 5.0);
    }

    #[test]
    fn the_source_rereads_only_on_change() {
        let dir = std::env::temp_dir().join(format!("sentinel-kubelet-src-{}", std::process::id()));
        let dropins = dir.join("config.json.d");
        std::fs::create_dir_all(&dropins).unwrap();
        let main = dir.join("config.json");
        std::fs::write(&main, r#"{"evictionHard":{"nodefs.available":"10%"}}"#).unwrap();
        let mut src = Source::default();
        assert_eq!(src.read(&main, &dropins).unwrap().hard.len(), 1);
        std::fs::write(dropins.join("10-a.conf"), "evictionHard:\n  imagefs.available: 20%\n").unwrap();
        std::fs::write(dropins.join("ignored.yaml"), "garbage: [").unwrap();
        assert_eq!(src.read(&main, &dropins).unwrap().hard.len(), 2);
        std::fs::write(dropins.join("20-b.conf"), "evictionHard: [").unwrap();
        assert!(src.read(&main, &dropins).unwrap_err().0.contains("20-b.conf"));
        std::fs::remove_file(dropins.join("20-b.conf")).unwrap();
        assert_eq!(src.read(&main, &dropins).unwrap().hard.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// tests/fixtures/bad-input/kubelet: one wrong type or value per file,
    /// each named by its `# expect:` line. Every one is refused with an
    /// error naming the file and the key, none is silently ignored.
    #[test]
    fn every_wrong_type_is_an_error_naming_the_file_and_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input/kubelet");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or("kubelet config");
            let err = match parse_merged(&[(path.clone(), text.clone())]) {
                Ok(s) => panic!("{} accepted: {s:?}", path.display()),
                Err(e) => e.0,
            };
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains(expect), "{}: {err} (want {expect})", path.display());
            checked += 1;
        }
        assert!(checked >= 25, "{checked}");
    }
}

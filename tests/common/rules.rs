//! The shipped alert rules as the drills load them into a real Prometheus:
//! every `for:` and `keep_firing_for:` cut to [`FOR`], every range window to
//! [`WINDOW`] and the D-state threshold to [`D_STATE_SECONDS`], so an alert
//! fires and resolves within seconds instead of minutes. The times such a
//! test measures are wiring latencies; the times to page at the shipped
//! defaults are asserted by `alerts/tests/timeliness.yml`.

use std::path::{Path, PathBuf};

/// `for:` and `keep_firing_for:` of every rule in the shortened copy.
pub const FOR: &str = "3s";
/// Range window of every rule in the shortened copy.
pub const WINDOW: &str = "20s";
/// The D-state time threshold in the shortened copy (shipped: 120).
pub const D_STATE_SECONDS: u32 = 5;

/// The shipped rule file.
pub fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/node-sentinel.rules.yml")
}

/// `text` (a rule file) with its durations shortened; a `0m`/`0s` stays.
pub fn shortened(text: &str) -> String {
    let for_re = regex::Regex::new(r"(?m)^(\s+(?:keep_firing_)?for: )(\d+[smh])$").unwrap();
    let win_re = regex::Regex::new(r"\[\d+[smh]\]").unwrap();
    let text = for_re.replace_all(text, |c: &regex::Captures| {
        if &c[2] == "0m" || &c[2] == "0s" {
            c[0].to_string()
        } else {
            format!("{}{FOR}", &c[1])
        }
    });
    let text = win_re.replace_all(&text, format!("[{WINDOW}]").as_str());
    let d_re =
        regex::Regex::new(r"(uninterruptible_oldest_seconds\{[^}]*\}(?:\[\d+[smh]\]\))? >= )\d+")
            .unwrap();
    d_re.replace_all(&text, format!("${{1}}{D_STATE_SECONDS}").as_str())
        .into_owned()
}

/// The shipped rules, shortened.
pub fn shortened_shipped() -> String {
    shortened(&std::fs::read_to_string(shipped()).expect("the shipped rule file"))
}

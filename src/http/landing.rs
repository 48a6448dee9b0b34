//! The landing page: version, links, current findings, and each collector's
//! status and freshness.
//!
//! The page is one template whose `{name}` placeholders are substituted in a
//! single pass: text that came from the machine (a finding naming a process
//! called `{rows}`, an error message) is inserted once and never read again as
//! a placeholder.

use std::fmt::Write;

use crate::collector;
use crate::findings;
use crate::store::{Status, Store};

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>node-sentinel</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}.ok{color:#080}.warn{color:#a60}.bad{color:#c00}</style>
</head><body>
<h1>node-sentinel</h1>
<p>Prometheus exporter that sees Kubernetes/Docker node outages coming. Version {version} (revision {revision}, rustc {rustc}).</p>
<ul><li><a href="{path}">Metrics</a></li><li><a href="/-/healthy">Health</a></li></ul>
<h2>Findings</h2>
{findings}
<h2>Collectors</h2>
<p>Collectors sample in the background; a scrape returns their latest results.</p>
<table><tr><th>collector</th><th>status</th><th>interval</th><th>last success</th><th>last duration</th><th>series</th><th>last error</th></tr>
{rows}
</table>
</body></html>
"#;

/// Replace every `{name}` in `template` by `values[name]`, in one pass over
/// the template only. An unknown `{...}` is kept as it is.
fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The landing page for the store's current state.
pub fn landing_page(store: &Store, telemetry_path: &str) -> String {
    let now = collector::unix_now();
    let current: Vec<_> = store.slots().iter().map(|s| s.current()).collect();
    let found = findings::evaluate(current.iter().flat_map(|p| p.families.iter()));
    let mut findings_html = String::new();
    if found.is_empty() {
        findings_html.push_str("<p class=\"ok\">Nothing wrong right now.</p>");
    } else {
        findings_html.push_str("<ul>");
        for f in &found {
            let class = match f.severity {
                findings::Severity::Critical => "bad",
                findings::Severity::Warning => "warn",
                findings::Severity::Info => "",
            };
            let _ = write!(
                findings_html,
                "<li><span class=\"{class}\">{}</span>: {}</li>",
                f.severity.as_str(),
                escape(&f.text)
            );
        }
        findings_html.push_str("</ul>");
    }
    let mut rows = String::new();
    for (slot, p) in store.slots().iter().zip(&current) {
        let status = p.status();
        let class = match status {
            Status::Ok => "ok",
            Status::Starting => "warn",
            Status::Failing => "bad",
            Status::NotInstalled => "",
        };
        let status = status.word();
        let fresh = p
            .last_success
            .map(|t| format!("{:.0}s ago", (now - t).max(0.0)))
            .unwrap_or_else(|| "never".into());
        let series: usize = p.families.iter().map(|f| f.samples.len()).sum();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"{class}\">{status}</td><td>{}s</td><td>{fresh}</td><td>{:.3}s</td><td>{series}</td><td>{}</td></tr>",
            slot.name,
            slot.interval.as_secs_f64(),
            p.duration.as_secs_f64(),
            escape(p.last_error.as_deref().unwrap_or("")),
        );
    }
    let path = escape(telemetry_path);
    substitute(
        TEMPLATE,
        &[
            ("version", crate::build_info::VERSION),
            ("revision", crate::build_info::REVISION),
            ("rustc", crate::build_info::RUSTC),
            ("path", &path),
            ("findings", &findings_html),
            ("rows", &rows),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_substitution_never_rereads_inserted_text() {
        let out = substitute("a {x} b {y} c {unknown} {", &[("x", "{y}"), ("y", "<{x}>")]);
        assert_eq!(out, "a {y} b <{x}> c {unknown} {");
    }

    #[test]
    fn css_braces_survive() {
        let page = landing_page(&crate::store::Store::default(), "/metrics");
        assert!(
            page.contains("body{font-family:sans-serif;margin:2em}"),
            "{page}"
        );
        assert!(page.contains("<a href=\"/metrics\">"));
        assert!(!page.contains("{rows}") && !page.contains("{findings}"));
    }

    #[test]
    fn escape_html() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}

//! The snapshot model every collector publishes, and its two encodings.
//!
//! A collector builds plain [`Family`] values each round; the scheduler sorts
//! them once and the store encodes them once, when they are published, in
//! both formats a scraper may ask for ([`Encoded`]). A scrape then only
//! concatenates bytes, so its cost never depends on what the collectors are
//! doing at that moment, nor on how many scrapers there are.
//!
//! - OpenMetrics 1.0 goes through prometheus-client's text encoder (pinned in
//!   Cargo.toml: [`OpenMetricsWriter`] relies on how it writes a value).
//! - The classic text format 0.0.4 (what a scraper gets when it does not ask
//!   for OpenMetrics, and what `promtool check metrics` lints) is written
//!   here: prometheus-client has no encoder for it. Counters carry their TYPE
//!   on the `_total` name, there is no `# EOF`, no `# UNIT`, and `_info`
//!   families stay gauges, as in every 0.0.4 exposition.

use std::borrow::Cow;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// A label set: fixed keys, values from the machine. Values longer than
/// [`MAX_LABEL_VALUE_BYTES`] are shortened by [`cap_label_value`] when the
/// series is added to its family.
pub type Labels = Vec<(&'static str, String)>;

/// The longest label value the exporter writes, in bytes (UTF-8).
///
/// Paths, mountpoints, unit names and command names come from the machine
/// and can be as long as it likes (PATH_MAX is 4096): one long value per
/// series, times every scrape and every sample Prometheus keeps, is what
/// makes an exposition heavy.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// Bytes kept from each end of a value that is cut; the rest of the
/// [`MAX_LABEL_VALUE_BYTES`] is `~`, 8 hex digits, `~`.
const KEPT_EACH_END: usize = (MAX_LABEL_VALUE_BYTES - 10) / 2;

/// The one rule for long label values: a value over
/// [`MAX_LABEL_VALUE_BYTES`] becomes its first 59 bytes, `~`, 8 hex digits
/// of a hash (64-bit FNV-1a, upper half) of the whole value, `~`, and its
/// last 59 bytes (both cut back to a character boundary). Both ends stay
/// readable (a path's root and its file name), the hash keeps two values
/// that share both ends apart, and the same value gives the same label in
/// every round and every run.
pub fn cap_label_value(value: &mut String) {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return;
    }
    let mut head = KEPT_EACH_END;
    while !value.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = value.len() - KEPT_EACH_END;
    while !value.is_char_boundary(tail) {
        tail += 1;
    }
    let capped = format!(
        "{}~{:08x}~{}",
        &value[..head],
        fnv1a(value.as_bytes()) >> 32,
        &value[tail..]
    );
    *value = capped;
}

/// 64-bit FNV-1a: stable across runs and platforms (std's hasher is not
/// guaranteed to be).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn cap_labels(labels: &mut Labels) {
    for (_, value) in labels.iter_mut() {
        cap_label_value(value);
    }
}

/// One metric family: a name, its help text, and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name. For counters, without the `_total` suffix: the encoder adds it.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// The metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// One series of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: Value,
}

/// The value of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(HistogramValue),
}

/// A classic histogram (native-only histograms make the text encoder fail).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramValue {
    pub sum: f64,
    pub count: u64,
    /// (upper bound, observations in this bucket alone), ascending, ending
    /// with +Inf; the encoder makes the counts cumulative.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramValue {
    /// An empty histogram with the given finite upper bounds (+Inf is added).
    pub fn new(bounds: &[f64]) -> Self {
        let mut buckets: Vec<(f64, u64)> = bounds
            .iter()
            .filter(|b| b.is_finite())
            .map(|b| (*b, 0))
            .collect();
        buckets.push((f64::INFINITY, 0));
        HistogramValue {
            sum: 0.0,
            count: 0,
            buckets,
        }
    }

    /// Record one observation.
    pub fn observe(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
        if let Some((_, n)) = self.buckets.iter_mut().find(|(bound, _)| v <= *bound) {
            *n += 1;
        }
    }
}

impl Family {
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        debug_assert!(
            kind != Kind::Counter || !name.ends_with("_total"),
            "{name}: counters are named without _total"
        );
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, Kind::Gauge)
    }

    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, Kind::Counter)
    }

    pub fn histogram(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, Kind::Histogram)
    }

    /// Add a numeric series (gauge or counter). Every series goes through
    /// here or [`Family::push_histogram`], so this is where label values are
    /// capped ([`cap_label_value`]).
    pub fn push(&mut self, mut labels: Labels, value: f64) -> &mut Self {
        cap_labels(&mut labels);
        self.samples.push(Sample {
            labels,
            value: Value::Number(value),
        });
        self
    }

    /// Add a histogram series.
    pub fn push_histogram(&mut self, mut labels: Labels, value: HistogramValue) -> &mut Self {
        cap_labels(&mut labels);
        self.samples.push(Sample {
            labels,
            value: Value::Histogram(value),
        });
        self
    }

    /// Sort series by their labels, so output is deterministic.
    pub fn sort(&mut self) {
        self.samples.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
}

/// 1.0 for true, 0.0 for false: yes/no findings are gauges.
pub fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Sort families by name and each family's series by labels.
pub fn sort_families(families: &mut [Family]) {
    families.sort_by(|a, b| a.name.cmp(b.name));
    for f in families.iter_mut() {
        f.sort();
    }
}

struct Series<'a>(&'a Value, Kind);

impl EncodeMetric for Series<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match (self.0, self.1) {
            (Value::Number(v), Kind::Counter) => {
                encoder.encode_counter::<NoLabelSet, f64, f64>(v, None)
            }
            (Value::Number(v), _) => encoder.encode_gauge(v),
            (Value::Histogram(h), _) => {
                encoder.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
            }
        }
    }

    fn metric_type(&self) -> MetricType {
        match self.1 {
            Kind::Gauge => MetricType::Gauge,
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
        }
    }
}

/// Encode families through a prometheus-client descriptor encoder.
pub fn encode_families<'a>(
    encoder: &mut DescriptorEncoder,
    families: impl IntoIterator<Item = &'a Family>,
) -> Result<(), std::fmt::Error> {
    for family in families {
        if family.samples.is_empty() {
            // As client_golang does: a family with no series is left out entirely.
            continue;
        }
        let help = family.help;
        let metric_type = match family.kind {
            Kind::Gauge => MetricType::Gauge,
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
        };
        let mut metric = encoder.encode_descriptor(family.name, help, None, metric_type)?;
        if let [only] = family.samples.as_slice()
            && only.labels.is_empty()
        {
            // Encoded directly: going through a label set would print `name{} 1`.
            Series(&only.value, family.kind).encode(metric)?;
            continue;
        }
        for sample in &family.samples {
            let labels: Vec<(Cow<'static, str>, Cow<'_, str>)> = sample
                .labels
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(v.as_str())))
                .collect();
            let series = metric.encode_family(&labels)?;
            Series(&sample.value, family.kind).encode(series)?;
        }
    }
    Ok(())
}

/// Writes OpenMetrics text, spelling infinities as the spec does (`+Inf`,
/// `-Inf`). prometheus-client prints a sample value as a separate " " write
/// followed by Rust's float text ("inf"); parsers accept both, people and
/// `grep` expect `+Inf`.
pub struct OpenMetricsWriter<'a> {
    out: &'a mut String,
    after_space: bool,
}

impl<'a> OpenMetricsWriter<'a> {
    pub fn new(out: &'a mut String) -> Self {
        OpenMetricsWriter {
            out,
            after_space: false,
        }
    }
}

impl std::fmt::Write for OpenMetricsWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let value = match (self.after_space, s) {
            (true, "inf") => "+Inf",
            (true, "-inf") => "-Inf",
            _ => s,
        };
        self.out.push_str(value);
        self.after_space = s == " ";
        Ok(())
    }
}

/// A set of families encoded once in both exposition formats, each without
/// a trailer (OpenMetrics' `# EOF` is added once per scrape, after the last
/// block), so blocks from several collectors concatenate into one valid body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    pub openmetrics: bytes::Bytes,
    pub text: bytes::Bytes,
}

impl Encoded {
    /// The block in `format`.
    pub fn get(&self, format: Format) -> &bytes::Bytes {
        match format {
            Format::OpenMetrics => &self.openmetrics,
            Format::Text => &self.text,
        }
    }

    /// Encode `families` in both formats.
    pub fn new(families: &[Family]) -> Encoded {
        Encoded {
            openmetrics: encode_openmetrics(families).into(),
            text: encode_text(families).into(),
        }
    }
}

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics trailer, written once at the end of a body.
pub const OPENMETRICS_EOF: &str = "# EOF\n";

/// Families as OpenMetrics text blocks, without the `# EOF` trailer.
pub fn encode_openmetrics(families: &[Family]) -> String {
    // The registry wants 'static collectors; the families are copied into an
    // owned one instead of borrowed (once per published round, not per scrape).
    #[derive(Debug)]
    struct Owned(Vec<Family>);
    impl prometheus_client::collector::Collector for Owned {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_families(&mut encoder, &self.0)
        }
    }
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Owned(families.to_vec())));
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error leaves what was written.
    let _ = prometheus_client::encoding::text::encode_registry(
        &mut OpenMetricsWriter::new(&mut out),
        &registry,
    );
    out
}

/// Families in the classic text format 0.0.4.
pub fn encode_text(families: &[Family]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for family in families {
        if family.samples.is_empty() {
            continue;
        }
        let (name, kind) = match family.kind {
            Kind::Counter => (Cow::Owned(format!("{}_total", family.name)), "counter"),
            Kind::Gauge => (Cow::Borrowed(family.name), "gauge"),
            Kind::Histogram => (Cow::Borrowed(family.name), "histogram"),
        };
        out.push_str("# HELP ");
        out.push_str(&name);
        out.push(' ');
        escape_help(&mut out, family.help);
        let _ = writeln!(out, "\n# TYPE {name} {kind}");
        for sample in &family.samples {
            match &sample.value {
                Value::Number(v) => text_line(&mut out, &name, "", &sample.labels, None, *v),
                Value::Histogram(h) => {
                    let mut cumulative = 0u64;
                    for (bound, n) in &h.buckets {
                        cumulative += n;
                        text_line(
                            &mut out,
                            &name,
                            "_bucket",
                            &sample.labels,
                            Some(*bound),
                            cumulative as f64,
                        );
                    }
                    text_line(&mut out, &name, "_sum", &sample.labels, None, h.sum);
                    text_line(
                        &mut out,
                        &name,
                        "_count",
                        &sample.labels,
                        None,
                        h.count as f64,
                    );
                }
            }
        }
    }
    out
}

/// One 0.0.4 sample line; `le` is a histogram bucket's bound.
fn text_line(out: &mut String, name: &str, suffix: &str, labels: &Labels, le: Option<f64>, v: f64) {
    use std::fmt::Write;
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, value) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, value);
            out.push('"');
        }
        if let Some(le) = le {
            if !first {
                out.push(',');
            }
            out.push_str("le=\"");
            push_float(out, le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_float(out, v);
    let _ = out.write_char('\n');
}

/// A float as Prometheus' parsers (and Go's `strconv.ParseFloat`) read it.
fn push_float(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// 0.0.4 HELP text escapes backslash and newline only.
fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Render families as a complete OpenMetrics text exposition (with `# EOF`).
pub fn render(families: &[Family]) -> String {
    let mut out = encode_openmetrics(families);
    out.push_str(OPENMETRICS_EOF);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_histograms_cumulate() {
        let mut c = Family::counter("sentinel_x_failures", "Failures.");
        c.push(vec![("reason", "timeout".into())], 3.0);
        let mut h = Family::histogram("sentinel_x_seconds", "Latency.");
        let mut v = HistogramValue::new(&[0.1, 1.0]);
        v.observe(0.05);
        v.observe(0.5);
        v.observe(7.0);
        h.push_histogram(vec![("operation", "ping".into())], v);
        let mut g = Family::gauge("sentinel_x_until_full_seconds", "TTF.");
        g.push(vec![], f64::INFINITY);
        let text = render(&[c, h, g]);
        assert!(
            text.contains("sentinel_x_failures_total{reason=\"timeout\"} 3"),
            "{text}"
        );
        for line in [
            "sentinel_x_seconds_bucket{le=\"0.1\",operation=\"ping\"} 1\n",
            "sentinel_x_seconds_bucket{le=\"1.0\",operation=\"ping\"} 2\n",
            "sentinel_x_seconds_bucket{le=\"+Inf\",operation=\"ping\"} 3\n",
            "sentinel_x_seconds_count{operation=\"ping\"} 3\n",
            "sentinel_x_until_full_seconds +Inf\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn infinities_are_spelled_as_openmetrics_does_but_labels_are_untouched() {
        let mut g = Family::gauge("sentinel_z", "Z.");
        g.push(vec![("name", "inf".into())], f64::NEG_INFINITY);
        g.push(vec![("name", " ".into())], f64::INFINITY);
        let text = render(&[g]);
        assert!(text.contains("sentinel_z{name=\"inf\"} -Inf\n"), "{text}");
        assert!(text.contains("sentinel_z{name=\" \"} +Inf\n"), "{text}");
    }

    #[test]
    fn long_label_values_keep_both_ends_and_stay_distinct() {
        let short = "/var/log/syslog".to_string();
        let mut v = short.clone();
        cap_label_value(&mut v);
        assert_eq!(v, short);
        let exact = "x".repeat(MAX_LABEL_VALUE_BYTES);
        let mut v = exact.clone();
        cap_label_value(&mut v);
        assert_eq!(v, exact);

        let id = "0123456789abcdef".repeat(4);
        let path = |n: &str| format!("/var/lib/docker/containers/{id}/{n}/{id}-json.log");
        let (mut a, mut b) = (path("a"), path("b"));
        cap_label_value(&mut a);
        cap_label_value(&mut b);
        assert!(a.len() <= MAX_LABEL_VALUE_BYTES, "{a}");
        assert_ne!(a, b, "values that differ only in the middle stay apart");
        assert!(a.starts_with("/var/lib/docker/containers/0123"), "{a}");
        assert!(a.ends_with("-json.log"), "{a}");
        let mut again = path("a");
        cap_label_value(&mut again);
        assert_eq!(a, again, "stable");

        // Cuts land on character boundaries.
        let mut wide = "é".repeat(100);
        cap_label_value(&mut wide);
        assert!(wide.len() <= MAX_LABEL_VALUE_BYTES, "{wide}");
        assert!(wide.starts_with("éé") && wide.ends_with("éé"), "{wide}");

        // Applied where series are added, to every label.
        let mut g = Family::gauge("sentinel_w", "W.");
        g.push(vec![("path", path("a")), ("comm", "x".into())], 1.0);
        g.push_histogram(vec![("path", path("a"))], HistogramValue::new(&[1.0]));
        for s in &g.samples {
            assert!(
                s.labels
                    .iter()
                    .all(|(_, v)| v.len() <= MAX_LABEL_VALUE_BYTES)
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut g = Family::gauge("sentinel_y", "Y.");
        g.push(vec![("path", "a\"b\\c\nd".into())], 1.0);
        let text = render(&[g]);
        assert!(
            text.contains(r#"sentinel_y{path="a\"b\\c\nd"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn text_format_0_0_4() {
        let mut c = Family::counter("sentinel_x_failures", "Failures\\ of x\nreally.");
        c.push(vec![("reason", "a\"b\\c\nd".into())], 3.0);
        let mut h = Family::histogram("sentinel_x_seconds", "Latency.");
        let mut v = HistogramValue::new(&[0.1, 1.0]);
        v.observe(0.05);
        v.observe(7.0);
        h.push_histogram(vec![("operation", "ping".into())], v);
        let mut g = Family::gauge("sentinel_x_info", "Info.");
        g.push(vec![], f64::INFINITY);
        let empty = Family::gauge("sentinel_x_empty", "Nothing.");
        let text = encode_text(&[c, h, g, empty]);
        assert_eq!(
            text,
            "# HELP sentinel_x_failures_total Failures\\\\ of x\\nreally.\n\
             # TYPE sentinel_x_failures_total counter\n\
             sentinel_x_failures_total{reason=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP sentinel_x_seconds Latency.\n\
             # TYPE sentinel_x_seconds histogram\n\
             sentinel_x_seconds_bucket{operation=\"ping\",le=\"0.1\"} 1\n\
             sentinel_x_seconds_bucket{operation=\"ping\",le=\"1\"} 1\n\
             sentinel_x_seconds_bucket{operation=\"ping\",le=\"+Inf\"} 2\n\
             sentinel_x_seconds_sum{operation=\"ping\"} 7.05\n\
             sentinel_x_seconds_count{operation=\"ping\"} 2\n\
             # HELP sentinel_x_info Info.\n\
             # TYPE sentinel_x_info gauge\n\
             sentinel_x_info +Inf\n"
        );
    }

    #[test]
    fn encoded_blocks_concatenate() {
        let mut a = Family::gauge("sentinel_a", "A.");
        a.push(vec![], 1.0);
        let e = Encoded::new(&[a]);
        let om = std::str::from_utf8(&e.openmetrics).unwrap();
        assert!(!om.contains("# EOF"), "{om}");
        assert!(om.contains("sentinel_a 1.0\n"), "{om}");
        assert!(
            std::str::from_utf8(&e.text)
                .unwrap()
                .contains("# TYPE sentinel_a gauge\nsentinel_a 1\n")
        );
    }
}

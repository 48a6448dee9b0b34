//! The snapshot model every collector publishes, and its OpenMetrics encoding.
//!
//! A collector builds plain [`Family`] values each round; the scheduler sorts
//! them once and swaps them in whole. A scrape only walks these values through
//! prometheus-client's text encoder, so its cost never depends on what the
//! collectors are doing at that moment.

use std::borrow::Cow;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Appended to every HELP text: values are sampled in the background, not at scrape time.
pub const HELP_SUFFIX: &str =
    " (sampled in the background; see sentinel_collector_last_success_timestamp_seconds)";

/// A label set: fixed keys, values from the machine (already capped by the collector).
pub type Labels = Vec<(&'static str, String)>;

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

    /// Add a numeric series (gauge or counter).
    pub fn push(&mut self, labels: Labels, value: f64) -> &mut Self {
        self.samples.push(Sample {
            labels,
            value: Value::Number(value),
        });
        self
    }

    /// Add a histogram series.
    pub fn push_histogram(&mut self, labels: Labels, value: HistogramValue) -> &mut Self {
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

/// Encode families through a prometheus-client descriptor encoder; `help_suffix`
/// is appended to every HELP text (collectors pass [`HELP_SUFFIX`]).
pub fn encode_families<'a>(
    encoder: &mut DescriptorEncoder,
    families: impl IntoIterator<Item = &'a Family>,
    help_suffix: &str,
) -> Result<(), std::fmt::Error> {
    let mut help = String::new();
    for family in families {
        if family.samples.is_empty() {
            // As client_golang does: a family with no series is left out entirely.
            continue;
        }
        help.clear();
        help.push_str(family.help);
        help.push_str(help_suffix);
        let metric_type = match family.kind {
            Kind::Gauge => MetricType::Gauge,
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
        };
        let mut metric = encoder.encode_descriptor(family.name, &help, None, metric_type)?;
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

/// Encode a whole registry as OpenMetrics text.
pub fn encode_registry(
    out: &mut String,
    registry: &prometheus_client::registry::Registry,
) -> std::fmt::Result {
    prometheus_client::encoding::text::encode(&mut OpenMetricsWriter::new(out), registry)
}

/// Render families as a complete OpenMetrics text exposition (with `# EOF`).
pub fn render(families: &[Family]) -> String {
    #[derive(Debug)]
    struct Owned(Vec<Family>);
    impl prometheus_client::collector::Collector for Owned {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_families(&mut encoder, &self.0, HELP_SUFFIX)
        }
    }
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Owned(families.to_vec())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode_registry(&mut out, &registry);
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
    fn label_values_are_escaped() {
        let mut g = Family::gauge("sentinel_y", "Y.");
        g.push(vec![("path", "a\"b\\c\nd".into())], 1.0);
        let text = render(&[g]);
        assert!(
            text.contains(r#"sentinel_y{path="a\"b\\c\nd"} 1"#),
            "{text}"
        );
    }
}

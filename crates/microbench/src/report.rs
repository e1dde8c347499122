//! What a benchmark reports: one `Figure` per measurement, printed as a human line and, with
//! `--json`, as one JSON object per line; plus the percentile and rate helpers they share.

use std::time::Duration;

use serde_json::{Map, Value};

/// One measurement: its name, what it ran on (labels) and what it measured (values, whose keys
/// carry their unit, e.g. `events_per_s`, `p99_ms`).
#[derive(Debug, Clone)]
pub struct Figure {
    benchmark: String,
    labels: Vec<(&'static str, Value)>,
    values: Vec<(&'static str, f64)>,
}

impl Figure {
    pub fn new(benchmark: impl Into<String>) -> Self {
        Self {
            benchmark: benchmark.into(),
            labels: Vec::new(),
            values: Vec::new(),
        }
    }

    /// A label: what the figure ran on (a backend, a count); numbers stay numbers in JSON.
    pub fn label(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.labels.push((key, value.into()));
        self
    }

    pub fn value(mut self, key: &'static str, value: f64) -> Self {
        self.values.push((key, value));
        self
    }

    /// `p50_ms`, `p95_ms`, `p99_ms`, `max_ms` and `samples` of `samples`.
    pub fn latencies(self, samples: &[Duration]) -> Self {
        let latencies = Percentiles::of(samples);
        self.value("p50_ms", latencies.p50_ms)
            .value("p95_ms", latencies.p95_ms)
            .value("p99_ms", latencies.p99_ms)
            .value("max_ms", latencies.max_ms)
            .value("samples", samples.len() as f64)
    }

    pub fn human(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key}={text}"),
                other => format!("{key}={other}"),
            })
            .collect();
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(key, value)| format!("{key}={}", format_number(*value)))
            .collect();
        format!(
            "{:<28} {:<48} {}",
            self.benchmark,
            labels.join(" "),
            values.join("  ")
        )
    }

    pub fn json(&self) -> Value {
        let mut object = Map::new();
        object.insert("benchmark".into(), Value::from(self.benchmark.clone()));
        for (key, value) in &self.labels {
            object.insert((*key).into(), value.clone());
        }
        for (key, value) in &self.values {
            // Three decimals are below any clock's noise here and keep the lines short.
            let rounded = (value * 1000.0).round() / 1000.0;
            object.insert((*key).into(), Value::from(rounded));
        }
        Value::Object(object)
    }
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// Latency percentiles (nearest rank) in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at = |quantile: f64| {
            let rank = (sorted.len() as f64 * quantile).ceil() as usize;
            millis(sorted[rank.clamp(1, sorted.len()) - 1])
        };
        Self {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: millis(sorted[sorted.len() - 1]),
        }
    }
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Items per second; 0 for an empty interval.
pub fn rate(items: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        items as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let latencies = Percentiles::of(&samples);
        assert_eq!(latencies.p50_ms, 50.0);
        assert_eq!(latencies.p95_ms, 95.0);
        assert_eq!(latencies.p99_ms, 99.0);
        assert_eq!(latencies.max_ms, 100.0);
    }

    #[test]
    fn no_samples_give_zero_percentiles() {
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }

    #[test]
    fn a_figure_prints_its_labels_and_values_in_both_forms() {
        let figure = Figure::new("outbox.append")
            .label("backend", "sqlite")
            .value("events_per_s", 1234.5678);
        assert_eq!(
            figure.json(),
            serde_json::json!({"benchmark": "outbox.append", "backend": "sqlite", "events_per_s": 1234.568})
        );
        assert!(figure.human().contains("backend=sqlite"));
        assert!(figure.human().contains("events_per_s=1234.6"));
    }
}

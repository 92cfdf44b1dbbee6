//! What a soak run measured: the gateway's memory and descriptors over time, whether memory stayed flat
//! (mean of the last third of the samples against the first third), and what the clients did.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::Serialize;

use crate::report::table;
use crate::soak::{Counters, SoakOptions};
use crate::wire::Serializer;

/// One reading of the gateway's process.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// Open file descriptors, when /proc/PID/fd could be read.
    pub fds: Option<usize>,
}

/// The soak run's report.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Always `soak`.
    pub scenario: &'static str,
    /// Serializer of every connection.
    pub serializer: Serializer,
    /// Seconds the run took.
    pub elapsed_s: f64,
    /// Events published per second, asked.
    pub rate: f64,
    /// Steady subscribers.
    pub subscribers: usize,
    /// Stalled consumer slots.
    pub stalled: usize,
    /// Churning clients.
    pub churners: usize,
    /// PUBLISH messages sent.
    pub published: u64,
    /// Times the publisher reconnected.
    pub publisher_reconnects: u64,
    /// EVENTs steady subscribers received.
    pub delivered: u64,
    /// Times a steady subscriber was dropped.
    pub subscriber_drops: u64,
    /// Churn cycles completed.
    pub churn_cycles: u64,
    /// Churn cycles that failed.
    pub churn_failures: u64,
    /// Why the first failed churn cycle failed.
    pub first_churn_error: Option<String>,
    /// Stalled consumers opened.
    pub stalled_opened: u64,
    /// Stalled consumers the gateway had closed when they were replaced.
    pub stalled_closed_by_gateway: u64,
    /// Stalled consumers that failed to connect.
    pub stalled_failures: u64,
    /// Mean RSS of the first third of the samples, KiB.
    pub rss_first_third_kib: f64,
    /// Mean RSS of the last third of the samples, KiB.
    pub rss_last_third_kib: f64,
    /// Growth from the first to the last third, percent.
    pub rss_growth_pct: f64,
    /// RSS change from the first to the last sample of the last third, KiB: a leak keeps growing here,
    /// while allocator high-water steps early in the run do not.
    pub rss_last_third_change_kib: i64,
    /// Largest RSS seen, KiB.
    pub rss_max_kib: u64,
    /// Whether the growth stayed within the tolerance.
    pub flat: bool,
    /// The tolerance, percent.
    pub flat_tolerance_pct: f64,
    /// Every sample.
    pub samples: Vec<Sample>,
}

/// Means of the first and last third of `values` (the same value twice for fewer than three).
pub fn thirds(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let third = (values.len() / 3).max(1);
    let mean = |part: &[f64]| part.iter().sum::<f64>() / part.len() as f64;
    Some((
        mean(&values[..third]),
        mean(&values[values.len() - third..]),
    ))
}

/// RSS of the last sample minus that of the first sample of the last third.
fn last_third_change(samples: &[Sample]) -> i64 {
    let third = (samples.len() / 3).max(1);
    match (
        samples.get(samples.len().saturating_sub(third)),
        samples.last(),
    ) {
        (Some(first), Some(last)) => last.rss_kib as i64 - first.rss_kib as i64,
        _ => 0,
    }
}

impl SoakReport {
    /// Builds the report from the options, the samples and the client counters.
    pub fn new(
        options: &SoakOptions,
        elapsed: Duration,
        samples: Vec<Sample>,
        counters: &Counters,
    ) -> Self {
        let rss: Vec<f64> = samples.iter().map(|s| s.rss_kib as f64).collect();
        let (first, last) = thirds(&rss).unwrap_or_default();
        let growth = if first > 0.0 {
            100.0 * (last - first) / first
        } else {
            0.0
        };
        SoakReport {
            scenario: "soak",
            serializer: options.serializer,
            elapsed_s: elapsed.as_secs_f64(),
            rate: options.rate,
            subscribers: options.subscribers,
            stalled: options.stalled,
            churners: options.churners,
            published: counters.published.load(Relaxed),
            publisher_reconnects: counters.publisher_reconnects.load(Relaxed),
            delivered: counters.delivered.load(Relaxed),
            subscriber_drops: counters.subscriber_drops.load(Relaxed),
            churn_cycles: counters.churn_cycles.load(Relaxed),
            churn_failures: counters.churn_failures.load(Relaxed),
            first_churn_error: counters
                .first_churn_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stalled_opened: counters.stalled_opened.load(Relaxed),
            stalled_closed_by_gateway: counters.stalled_closed.load(Relaxed),
            stalled_failures: counters.stalled_failures.load(Relaxed),
            rss_first_third_kib: first,
            rss_last_third_kib: last,
            rss_growth_pct: growth,
            rss_last_third_change_kib: last_third_change(&samples),
            rss_max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            flat: !samples.is_empty() && growth <= options.flat_tolerance_pct,
            flat_tolerance_pct: options.flat_tolerance_pct,
            samples,
        }
    }

    /// The report as a two-column table, with about ten of the samples.
    pub fn table(&self) -> String {
        let mib = |kib: f64| format!("{:.1}", kib / 1024.0);
        let fds = |s: &Sample| s.fds.map_or("?".into(), |n| n.to_string());
        let step = (self.samples.len() / 10).max(1);
        let trace = self
            .samples
            .iter()
            .step_by(step)
            .chain(self.samples.last())
            .map(|s| format!("{:.0}s {} MiB {} fds", s.t_s, mib(s.rss_kib as f64), fds(s)))
            .collect::<Vec<_>>()
            .join(", ");
        table(&[
            ("scenario", "soak".into()),
            (
                "serializer",
                format!("{:?}", self.serializer).to_lowercase(),
            ),
            ("elapsed (s)", format!("{:.0}", self.elapsed_s)),
            (
                "clients",
                format!(
                    "{} steady, {} stalled, {} churning, 1 publisher at {} events/s",
                    self.subscribers, self.stalled, self.churners, self.rate
                ),
            ),
            ("published", self.published.to_string()),
            (
                "publisher reconnects",
                self.publisher_reconnects.to_string(),
            ),
            ("delivered to steady", self.delivered.to_string()),
            ("steady subscriber drops", self.subscriber_drops.to_string()),
            (
                "churn cycles",
                match &self.first_churn_error {
                    Some(error) => format!(
                        "{} ({} failed; the first: {error})",
                        self.churn_cycles, self.churn_failures
                    ),
                    None => format!("{} ({} failed)", self.churn_cycles, self.churn_failures),
                },
            ),
            (
                "stalled consumers",
                format!(
                    "{} opened, {} closed by the gateway, {} failed to connect",
                    self.stalled_opened, self.stalled_closed_by_gateway, self.stalled_failures
                ),
            ),
            ("RSS first third (MiB)", mib(self.rss_first_third_kib)),
            ("RSS last third (MiB)", mib(self.rss_last_third_kib)),
            ("RSS growth", format!("{:+.1}%", self.rss_growth_pct)),
            (
                "RSS change in last third",
                format!("{:+} KiB", self.rss_last_third_change_kib),
            ),
            ("RSS max (MiB)", mib(self.rss_max_kib as f64)),
            (
                "flat",
                format!("{} (tolerance {}%)", self.flat, self.flat_tolerance_pct),
            ),
            ("samples", trace),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirds_compare_the_start_with_the_end() {
        assert_eq!(thirds(&[]), None);
        assert_eq!(thirds(&[5.0]), Some((5.0, 5.0)));
        assert_eq!(thirds(&[1.0, 2.0]), Some((1.0, 2.0)));
        let values = [10.0, 12.0, 50.0, 50.0, 50.0, 14.0, 16.0];
        // Seven samples: thirds of two, the middle three ignored.
        assert_eq!(thirds(&values), Some((11.0, 15.0)));
    }

    #[test]
    fn growth_beyond_the_tolerance_is_not_flat() {
        let samples = |rss: &[u64]| -> Vec<Sample> {
            rss.iter()
                .enumerate()
                .map(|(i, &rss_kib)| Sample {
                    t_s: i as f64 * 5.0,
                    rss_kib,
                    fds: Some(10),
                })
                .collect()
        };
        let options = SoakOptions::default();
        let counters = Counters::default();
        let elapsed = Duration::from_secs(30);
        let flat = SoakReport::new(
            &options,
            elapsed,
            samples(&[100, 104, 90, 100, 105, 108]),
            &counters,
        );
        assert!(flat.flat, "{}", flat.table());
        assert!(
            (flat.rss_growth_pct - 4.4).abs() < 0.1,
            "{}",
            flat.rss_growth_pct
        );
        let growing = SoakReport::new(
            &options,
            elapsed,
            samples(&[100, 100, 120, 130, 140, 150]),
            &counters,
        );
        assert!(!growing.flat);
        assert_eq!(growing.rss_max_kib, 150);
        assert_eq!(growing.rss_last_third_change_kib, 10);
        assert_eq!(flat.rss_last_third_change_kib, 3);
        assert!(!SoakReport::new(&options, elapsed, Vec::new(), &counters).flat);
    }
}

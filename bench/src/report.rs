//! Results: latency percentiles, the fan-out/latency report, the idle-memory report, and their human table
//! and one-line JSON forms.

use serde::Serialize;

use crate::wire::{Serializer, Transport};

/// Publish-to-delivery latency percentiles, in microseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Number of sampled deliveries.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of latencies given in nanoseconds (sorted in place); `None` when there are none.
    pub fn from_ns(samples: &mut [u64]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            samples: samples.len(),
            p50_us: us(percentile(samples, 500)),
            p99_us: us(percentile(samples, 990)),
            p999_us: us(percentile(samples, 999)),
            max_us: us(samples[samples.len() - 1]),
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty `sorted`, given in per-mille (990 is p99).
pub fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a fan-out or latency run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    /// `fanout`, `latency` or `smoke`.
    pub scenario: String,
    /// Serializer used by every connection.
    pub serializer: Serializer,
    /// Transport of every connection.
    pub transport: Transport,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Events published.
    pub events: u64,
    /// Requested EVENT frame size in bytes.
    pub size: usize,
    /// Distinct server-side filters the subscribers used (0: none).
    pub filters: usize,
    /// Measured EVENT frame size in bytes (from a sampled subscriber; 0 when none arrived).
    pub event_bytes: usize,
    /// Publish rate asked for, events per second (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Subscribers whose latency was sampled.
    pub sampled: usize,
    /// Seconds to open, join and subscribe every subscriber.
    pub connect_s: f64,
    /// Seconds the publisher took to send every event.
    pub publish_s: f64,
    /// Deliveries expected: subscribers x events.
    pub expected: u64,
    /// EVENT frames received.
    pub delivered: u64,
    /// Expected but not received before the timeout.
    pub lost: u64,
    /// Of those, missing at subscribers the gateway did not close: the gaps an open session would not
    /// know about (the gateway promises none).
    pub lost_open: u64,
    /// Sampled events out of order or duplicated.
    pub misordered: u64,
    /// Non-EVENT frames subscribers got (ABORT for slow consumers, say).
    pub unexpected: u64,
    /// Subscribers the gateway closed.
    pub closed_by_gateway: usize,
    /// Seconds from the first publish to the last delivery.
    pub elapsed_s: f64,
    /// Deliveries per second over `elapsed_s`.
    pub deliveries_per_s: f64,
    /// Publish-to-delivery latency of sampled subscribers.
    pub latency: Option<Latency>,
    /// The gateway's CPU time (user + system) from the publisher's start to the last delivery, when its
    /// pid was given.
    pub gateway_cpu_s: Option<f64>,
}

impl FlowReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("scenario", self.scenario.clone()),
            (
                "serializer",
                format!("{:?}", self.serializer).to_lowercase(),
            ),
            ("transport", format!("{:?}", self.transport).to_lowercase()),
            ("subscribers", self.subscribers.to_string()),
            ("events", self.events.to_string()),
            ("distinct filters", self.filters.to_string()),
            (
                "event size (bytes)",
                format!("{} asked, {} measured", self.size, self.event_bytes),
            ),
            (
                "publish rate",
                self.rate
                    .map_or("unlimited".into(), |r| format!("{r} events/s")),
            ),
            ("connect (s)", format!("{:.2}", self.connect_s)),
            ("publish (s)", format!("{:.3}", self.publish_s)),
            ("deliveries expected", self.expected.to_string()),
            ("delivered", self.delivered.to_string()),
            ("lost", self.lost.to_string()),
            ("lost by open sessions", self.lost_open.to_string()),
            ("misordered (sampled)", self.misordered.to_string()),
            ("unexpected frames", self.unexpected.to_string()),
            ("closed by gateway", self.closed_by_gateway.to_string()),
            ("elapsed (s)", format!("{:.3}", self.elapsed_s)),
            ("deliveries/s", format!("{:.0}", self.deliveries_per_s)),
        ];
        if let Some(cpu) = self.gateway_cpu_s {
            let per = cpu * 1e6 / self.delivered.max(1) as f64;
            rows.push((
                "gateway CPU (s)",
                format!("{cpu:.2} ({per:.3} us per delivery)"),
            ));
        }
        match &self.latency {
            Some(l) => rows.extend([
                (
                    "latency samples",
                    format!("{} ({} subscribers)", l.samples, self.sampled),
                ),
                ("latency p50 (ms)", format!("{:.3}", l.p50_us / 1000.0)),
                ("latency p99 (ms)", format!("{:.3}", l.p99_us / 1000.0)),
                ("latency p99.9 (ms)", format!("{:.3}", l.p999_us / 1000.0)),
                ("latency max (ms)", format!("{:.3}", l.max_us / 1000.0)),
            ]),
            None => rows.push(("latency", "no samples".into())),
        }
        table(&rows)
    }
}

/// What an idle-memory run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Gateway process id.
    pub pid: u32,
    /// Connections opened, joined and subscribed.
    pub connections: usize,
    /// Their transport.
    pub transport: Transport,
    /// Whether each connection subscribed to its own topic.
    pub distinct_topics: bool,
    /// Seconds to open them all.
    pub connect_s: f64,
    /// Gateway VmRSS before, in KiB.
    pub rss_before_kib: u64,
    /// Gateway VmRSS with every connection open, once settled, in KiB.
    pub rss_after_kib: u64,
    /// Whether the RSS settled before the deadline.
    pub settled: bool,
    /// Gateway VmRSS after the connections closed, in KiB.
    pub rss_closed_kib: u64,
    /// (after - before) / connections, in bytes.
    pub bytes_per_connection: f64,
}

impl IdleReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        table(&[
            ("scenario", "idle".into()),
            ("gateway pid", self.pid.to_string()),
            ("connections", self.connections.to_string()),
            ("transport", format!("{:?}", self.transport).to_lowercase()),
            ("distinct topics", self.distinct_topics.to_string()),
            ("connect (s)", format!("{:.2}", self.connect_s)),
            ("RSS before (KiB)", self.rss_before_kib.to_string()),
            ("RSS connected (KiB)", self.rss_after_kib.to_string()),
            ("settled", self.settled.to_string()),
            ("RSS after close (KiB)", self.rss_closed_kib.to_string()),
            (
                "RSS per connection",
                format!(
                    "{:.0} bytes ({:.2} KiB)",
                    self.bytes_per_connection,
                    self.bytes_per_connection / 1024.0
                ),
            ),
        ])
    }
}

/// Formats rows as an aligned two-column table.
pub fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut ns: Vec<u64> = (1..=1000).rev().map(|i| i * 1000).collect();
        let l = Latency::from_ns(&mut ns).expect("samples");
        assert_eq!(l.samples, 1000);
        assert_eq!(l.p50_us, 500.0);
        assert_eq!(l.p99_us, 990.0);
        assert_eq!(l.p999_us, 999.0);
        assert_eq!(l.max_us, 1000.0);
        assert_eq!(percentile(&[7], 999), 7);
        assert!(Latency::from_ns(&mut []).is_none());
    }
}

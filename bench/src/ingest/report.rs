//! What an ingest run measured, as a table or one JSON line.

use serde::Serialize;

use super::IngestTransport;
use crate::report::{table, Latency};

/// What an ingest run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Always `ingest`.
    pub scenario: String,
    /// The ingestion transport.
    pub transport: IngestTransport,
    /// How events were handed to the emitter (single `emit` or `emit_batch`, calls in flight).
    pub mode: String,
    /// Events per `emit_batch` call (`None`: one `emit` per event).
    pub batch: Option<usize>,
    /// Emitter calls in flight at once.
    pub window: usize,
    /// Events asked for.
    pub events: u64,
    /// Requested EVENT frame size in bytes.
    pub size: usize,
    /// Measured EVENT frame size at the subscriber (0 when none arrived).
    pub event_bytes: usize,
    /// Size of one event's JSON body on the ingestion wire, idempotency key included.
    pub body_bytes: usize,
    /// Events the emitter confirmed.
    pub emitted: u64,
    /// Events the emitter reported as failed.
    pub emit_failed: u64,
    /// The first emit failure.
    pub first_error: Option<String>,
    /// Seconds from the first emit to the last confirmation.
    pub emit_s: f64,
    /// Events the subscriber received.
    pub delivered: u64,
    /// Confirmed by the emitter but not delivered before the deadline.
    pub lost: u64,
    /// Events out of sequence order or duplicated.
    pub misordered: u64,
    /// Non-EVENT frames the subscriber got.
    pub unexpected: u64,
    /// Seconds from the first emit to the last delivery.
    pub elapsed_s: f64,
    /// Delivered events per second over `elapsed_s`.
    pub events_per_s: f64,
    /// Emit-to-delivery latency of every delivered event.
    pub latency: Option<Latency>,
    /// CPU seconds the gateway used during the run (when its pid was given).
    pub gateway_cpu_s: Option<f64>,
    /// CPU seconds this generator (subscriber and emitter) used during the run.
    pub bench_cpu_s: f64,
}

impl IngestReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let percent = |cpu: f64| {
            if self.elapsed_s > 0.0 {
                format!(
                    "{cpu:.2} s ({:.0} % of one core)",
                    100.0 * cpu / self.elapsed_s
                )
            } else {
                format!("{cpu:.2} s")
            }
        };
        let mut rows = vec![
            ("scenario", self.scenario.clone()),
            ("transport", self.transport.name().to_string()),
            ("mode", self.mode.clone()),
            ("events", self.events.to_string()),
            (
                "event size (bytes)",
                format!(
                    "{} asked, {} measured; ingestion body {}",
                    self.size, self.event_bytes, self.body_bytes
                ),
            ),
            ("emitted (confirmed)", self.emitted.to_string()),
            ("emit failed", self.emit_failed.to_string()),
            ("emit (s)", format!("{:.3}", self.emit_s)),
            ("delivered", self.delivered.to_string()),
            ("lost", self.lost.to_string()),
            ("misordered", self.misordered.to_string()),
            ("unexpected frames", self.unexpected.to_string()),
            ("elapsed (s)", format!("{:.3}", self.elapsed_s)),
            ("events/s", format!("{:.0}", self.events_per_s)),
        ];
        if let Some(error) = &self.first_error {
            rows.push(("first emit error", error.clone()));
        }
        match &self.latency {
            Some(l) => rows.extend([
                ("latency p50 (ms)", format!("{:.3}", l.p50_us / 1000.0)),
                ("latency p99 (ms)", format!("{:.3}", l.p99_us / 1000.0)),
                ("latency max (ms)", format!("{:.3}", l.max_us / 1000.0)),
            ]),
            None => rows.push(("latency", "no samples".into())),
        }
        if let Some(cpu) = self.gateway_cpu_s {
            rows.push(("gateway CPU", percent(cpu)));
        }
        rows.push(("generator CPU", percent(self.bench_cpu_s)));
        table(&rows)
    }
}

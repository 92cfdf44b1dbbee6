//! Smoke: the smallest fan-out (10 subscribers, 10 events, every subscriber sampled) that must lose
//! nothing. CI runs it against a debug gateway so the tool cannot rot.

use std::time::Duration;

use anyhow::bail;

use crate::fanout::{flow, FanoutOptions};
use crate::report::FlowReport;
use crate::wire::Serializer;

/// Subscribers in the smoke run.
pub const SUBSCRIBERS: usize = 10;
/// Events in the smoke run.
pub const EVENTS: u64 = 10;

/// Runs the smoke scenario; an error if any delivery was lost, misordered or unexpected.
pub async fn run(url: &str, serializer: Serializer) -> anyhow::Result<FlowReport> {
    let options = FanoutOptions {
        url: url.to_string(),
        subscribers: SUBSCRIBERS,
        events: EVENTS,
        size: 200,
        serializer,
        sample_every: 1,
        topic: "com.switchboard.bench.smoke".into(),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
        ..FanoutOptions::default()
    };
    let report = flow("smoke", &options).await?;
    if report.lost != 0 || report.delivered != report.expected {
        bail!(
            "smoke: {} of {} deliveries lost",
            report.lost,
            report.expected
        );
    }
    if report.misordered != 0 || report.unexpected != 0 || report.closed_by_gateway != 0 {
        bail!(
            "smoke: {} misordered, {} unexpected frames, {} connections closed by the gateway",
            report.misordered,
            report.unexpected,
            report.closed_by_gateway
        );
    }
    Ok(report)
}

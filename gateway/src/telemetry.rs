//! Operator metrics, served as Prometheus text at `GET /metrics` on the HTTP listener.
//!
//! Every part of the gateway records with the `metrics` macros (`metrics::counter!(DELIVERIES)...`); this
//! module installs the one process-wide Prometheus recorder, describes every metric, gives histograms
//! their buckets and renders the text. The names below are a contract with dashboards and alerts: use the
//! constants, and keep README's operator section in step when adding one.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Gauge: open HTTP/WebSocket connections (admitted, not yet closed).
pub const CONNECTIONS: &str = "switchboard_connections";
/// Counter, label `reason` (`max_connections`, `header_timeout`): connections refused or closed before
/// they could make a request.
pub const CONNECTIONS_REFUSED: &str = "switchboard_connections_refused_total";
/// Gauge: joined WAMP sessions.
pub const SESSIONS: &str = "switchboard_sessions";
/// Gauge: subscriptions across realms.
pub const SUBSCRIPTIONS: &str = "switchboard_subscriptions";
/// Counter: EVENT frames queued to sessions.
pub const DELIVERIES: &str = "switchboard_deliveries_total";
/// Counter, label `reason`: events or messages not delivered.
pub const DROPPED: &str = "switchboard_dropped_total";
/// Counter, label `reason` (`bytes`, `frames`, `stalled`): sessions closed as slow consumers.
pub const SLOW_CONSUMER_CLOSES: &str = "switchboard_slow_consumer_closes_total";
/// Histogram: bytes queued for a session when it was closed as a slow consumer.
pub const SLOW_CONSUMER_QUEUED_BYTES: &str = "switchboard_slow_consumer_queued_bytes";
/// Histogram: outbound queue depth (frames) seen by a session's writer.
pub const OUTBOUND_QUEUE_FRAMES: &str = "switchboard_outbound_queue_frames";
/// Counter, label `error`: ERROR/ABORT messages sent for refused WAMP requests.
pub const WAMP_REFUSALS: &str = "switchboard_wamp_refusals_total";
/// Counter, label `transport`: ingested events accepted.
pub const INGEST_ACCEPTED: &str = "switchboard_ingest_accepted_total";
/// Counter, labels `transport` and `reason`: ingested messages refused.
pub const INGEST_REFUSED: &str = "switchboard_ingest_refused_total";

/// `reason` of [`CONNECTIONS_REFUSED`] past `max_connections`.
pub const REFUSED_MAX_CONNECTIONS: &str = "max_connections";
/// `reason` of [`CONNECTIONS_REFUSED`] when no complete request header came in time.
pub const REFUSED_HEADER_TIMEOUT: &str = "header_timeout";

/// Bucket bounds of [`SLOW_CONSUMER_QUEUED_BYTES`]: 1 KiB to 64 MiB, by fours.
const QUEUED_BYTES_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// Bucket bounds of [`OUTBOUND_QUEUE_FRAMES`]: powers of two up to past the default queue (1,024).
const QUEUE_FRAMES_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
/// How often histogram samples are folded into their buckets between scrapes (bounds memory).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder (once per process; later calls return the same handle) and
/// describes every metric. None when another `metrics` recorder was installed first (some tests do):
/// the gateway then runs without `/metrics` rather than failing.
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(
            || match builder().and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => {
                    describe();
                    register();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics answers 503");
                    None
                }
            },
        )
        .as_ref()
}

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn serve() -> Response {
    match install() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics unavailable: another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

/// Counts a connection refused or closed early for `reason`.
pub(crate) fn connection_refused(reason: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(SLOW_CONSUMER_QUEUED_BYTES.to_string()),
            QUEUED_BYTES_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(OUTBOUND_QUEUE_FRAMES.to_string()),
            QUEUE_FRAMES_BUCKETS,
        )
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open HTTP/WebSocket connections.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused (reason=max_connections: HTTP 503) or closed before a complete request \
         header (reason=header_timeout)."
    );
    describe_gauge!(SESSIONS, "Joined WAMP sessions.");
    describe_gauge!(SUBSCRIPTIONS, "Subscriptions across realms.");
    describe_counter!(DELIVERIES, "EVENT frames queued to sessions.");
    describe_counter!(DROPPED, "Events or messages not delivered, by reason.");
    describe_counter!(
        SLOW_CONSUMER_CLOSES,
        "Sessions closed as slow consumers, by what overflowed (bytes, frames, stalled)."
    );
    describe_histogram!(
        SLOW_CONSUMER_QUEUED_BYTES,
        Unit::Bytes,
        "Bytes queued for a session when it was closed as a slow consumer."
    );
    describe_histogram!(
        OUTBOUND_QUEUE_FRAMES,
        Unit::Count,
        "Outbound queue depth (frames) seen by a session's writer."
    );
    describe_counter!(
        WAMP_REFUSALS,
        "ERROR or ABORT messages sent for refused WAMP requests, by error URI."
    );
    describe_counter!(INGEST_ACCEPTED, "Ingested events accepted, by transport.");
    describe_counter!(
        INGEST_REFUSED,
        "Ingested messages refused, by transport and reason."
    );
}

/// Registers the series whose labels are known up front, at zero, so that they exist from the first
/// scrape (a rate over a series that appears at its first event misses that event). Adding zero leaves
/// values others already recorded unchanged.
fn register() {
    metrics::gauge!(CONNECTIONS).increment(0.0);
    for reason in [REFUSED_MAX_CONNECTIONS, REFUSED_HEADER_TIMEOUT] {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(0);
    }
    metrics::gauge!(SESSIONS).increment(0.0);
    metrics::gauge!(SUBSCRIPTIONS).increment(0.0);
    metrics::counter!(DELIVERIES).increment(0);
    for reason in ["bytes", "frames", "stalled"] {
        metrics::counter!(SLOW_CONSUMER_CLOSES, "reason" => reason).increment(0);
    }
    // A histogram registered without samples renders with empty buckets.
    let _ = metrics::histogram!(SLOW_CONSUMER_QUEUED_BYTES);
    let _ = metrics::histogram!(OUTBOUND_QUEUE_FRAMES);
}

/// Folds histogram samples into buckets periodically, so that memory stays bounded when nobody scrapes.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_string())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the metrics upkeep thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_keeps_the_one_recorder() {
        // Several servers (tests, embedders) in one process all install: the first wins, the rest share it.
        let first = install().expect("installed");
        let second = install().expect("still installed");
        assert!(std::ptr::eq(first, second));
        metrics::counter!("switchboard_test_install_twice_total").increment(2);
        let text = second.render();
        assert!(
            text.contains("switchboard_test_install_twice_total 2"),
            "{text}"
        );
        assert!(
            text.contains("# HELP switchboard_connections Open HTTP/WebSocket connections."),
            "described once, at install: {text}"
        );
    }
}

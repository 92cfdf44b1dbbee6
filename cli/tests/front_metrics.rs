//! `GET /metrics` from the running binary: Prometheus text with every metric registered at start, and
//! `switchboard_connections` following a WebSocket as it opens and closes.

mod front_support;
mod support;

use front_support::{get_full, sample, wait_for_sample};
use support::{Gateway, RawClient, OPEN_REALM};

/// Series present from the first scrape, before any traffic.
const AT_START: &[&str] = &[
    "switchboard_connections",
    "switchboard_connections_refused_total{reason=\"max_connections\"}",
    "switchboard_connections_refused_total{reason=\"header_timeout\"}",
    "switchboard_sessions",
    "switchboard_subscriptions",
    "switchboard_deliveries_total",
    "switchboard_slow_consumer_closes_total{reason=\"bytes\"}",
    "switchboard_slow_consumer_closes_total{reason=\"frames\"}",
    "switchboard_slow_consumer_closes_total{reason=\"stalled\"}",
    "switchboard_slow_consumer_queued_bytes_count",
    "switchboard_outbound_queue_frames_count",
];

#[test]
fn metrics_are_prometheus_text_with_every_series_described() {
    let gateway = Gateway::start("", OPEN_REALM);
    let (status, head, body) = get_full(gateway.port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "Prometheus text content type in {head}"
    );
    for series in AT_START {
        assert!(
            sample(&body, series).is_some(),
            "{series} missing from /metrics:\n{body}"
        );
        let name = series.split(['{', ' ']).next().unwrap_or_default();
        let family = name.trim_end_matches("_count").trim_end_matches("_bucket");
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "{family} has no description"
        );
    }
    assert!(
        body.contains("switchboard_slow_consumer_queued_bytes_bucket{le=\"1048576\"}"),
        "the queued-bytes histogram has byte-sized buckets:\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_gauge_follows_a_websocket() {
    let gateway = Gateway::start("", OPEN_REALM);
    let port = gateway.port;
    let scrape_until = move |wanted: f64| {
        tokio::task::spawn_blocking(move || {
            // The scraping connection counts itself.
            wait_for_sample(port, "switchboard_connections", |n| n == wanted)
        })
    };
    scrape_until(1.0).await.expect("only the scrape");

    let (mut client, _) = RawClient::joined(&gateway.url()).await;
    scrape_until(2.0)
        .await
        .expect("the WebSocket and the scrape");

    client.socket.close(None).await.expect("close sent");
    client.recv_until_closed().await;
    scrape_until(1.0).await.expect("the WebSocket is gone");
}

//! Builds nothing: starts the gateway binary (`SWITCHBOARD_BIN`, else `target/debug/switchboard`, which
//! the test runner builds first) on a port the OS chooses (its `--ready-file` says which) and runs the smoke scenario, and a few seconds of the
//! soak scenario, fan-out over RawSocket and long-poll and churn with a meta subscriber, against it through the
//! library; and, against a gateway keeping history, the live-data
//! scenarios (recovery, filtered fan-out, history memory) at a small scale; and RPC calls. Asserts no loss; no timing
//! assertions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_bench::{Serializer, Transport};

const CONFIG: &str = r#"
outbound_queue = 4096

[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
"#;

/// The gateway process and its scratch directory, both cleaned up on drop.
struct Gateway {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn gateway_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf();
    workspace.join("target/debug/switchboard")
}

fn start_gateway() -> Gateway {
    start_gateway_with("")
}

/// A gateway whose config is [`CONFIG`] followed by `extra` (more `[[realms.history]]` entries, say).
fn start_gateway_with(extra: &str) -> Gateway {
    let binary = gateway_binary();
    assert!(
        binary.exists(),
        "gateway binary {} is missing: build it first with `cargo build -p switchboard` \
         (or point SWITCHBOARD_BIN at one)",
        binary.display()
    );
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchboard-bench-smoke-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bench.toml");
    let ready = dir.join("ready.json");
    let text = format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{CONFIG}{extra}");
    std::fs::write(&config, text).expect("config written");
    let log = std::fs::File::create(dir.join("gateway.log")).expect("log file");
    let child = Command::new(&binary)
        .args(["gateway", "--config"])
        .arg(&config)
        .arg("--ready-file")
        .arg(&ready)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let mut gateway = Gateway {
        child,
        port: 0,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let ready: serde_json::Value = serde_json::from_str(&text).expect("ready file is JSON");
            let http = ready["http"].as_str().expect("http address");
            gateway.port = http
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse().ok())
                .unwrap_or_else(|| panic!("no port in {http:?}"));
            return gateway;
        }
        if let Ok(Some(status)) = gateway.child.try_wait() {
            let log = std::fs::read_to_string(gateway.dir.join("gateway.log")).unwrap_or_default();
            panic!("gateway exited with {status}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gateway wrote no ready file within 20 s");
}

async fn smoke(serializer: Serializer) {
    let gateway = start_gateway();
    let url = format!("ws://127.0.0.1:{}/ws", gateway.port);
    let report = switchboard_bench::smoke::run(&url, serializer)
        .await
        .unwrap_or_else(|e| panic!("smoke run failed: {e:#}"));
    assert_eq!(report.expected, 100);
    assert_eq!(report.delivered, report.expected);
    assert_eq!(report.lost, 0);
    assert_eq!(report.misordered, 0);
    assert!(report.latency.is_some_and(|l| l.samples == 100));
}

#[tokio::test]
async fn smoke_json_loses_nothing() {
    smoke(Serializer::Json).await;
}

#[tokio::test]
async fn smoke_msgpack_loses_nothing() {
    smoke(Serializer::Msgpack).await;
}

#[tokio::test]
async fn rawsocket_fanout_loses_nothing() {
    let gateway = start_gateway();
    for serializer in [Serializer::Json, Serializer::Msgpack] {
        let options = switchboard_bench::FanoutOptions {
            url: format!("ws://127.0.0.1:{}/ws", gateway.port),
            transport: Transport::Rawsocket,
            serializer,
            subscribers: 20,
            events: 20,
            sample_every: 10,
            ..Default::default()
        };
        let report = switchboard_bench::fanout::run(&options)
            .await
            .unwrap_or_else(|e| panic!("rawsocket fan-out failed: {e:#}"));
        let table = report.table();
        assert_eq!(report.delivered, 400, "{table}");
        assert_eq!(
            (report.lost, report.misordered, report.unexpected),
            (0, 0, 0),
            "{table}"
        );
    }
}

/// `spread_urls` and `publish_url` (what a cluster run uses), on two gateways that are not a cluster:
/// subscribers 0 and 2 on A, 1 on B, so the deliveries tell which gateway the publisher used.
#[tokio::test]
async fn fanout_spreads_subscribers_and_publishes_where_told() {
    let (a, b) = (start_gateway(), start_gateway());
    let (url_a, url_b) = (
        format!("ws://127.0.0.1:{}/ws", a.port),
        format!("ws://127.0.0.1:{}/ws", b.port),
    );
    for (publish_url, on_that_gateway) in [
        (None, 2),
        (Some(url_a.clone()), 2),
        (Some(url_b.clone()), 1),
    ] {
        let options = switchboard_bench::FanoutOptions {
            url: url_a.clone(),
            spread_urls: vec![url_b.clone()],
            publish_url: publish_url.clone(),
            subscribers: 3,
            events: 10,
            sample_every: 1,
            timeout: Duration::from_secs(3),
            ..Default::default()
        };
        let report = switchboard_bench::fanout::run(&options)
            .await
            .unwrap_or_else(|e| panic!("spread fan-out failed: {e:#}"));
        let table = report.table();
        assert_eq!(
            report.delivered,
            on_that_gateway * 10,
            "{publish_url:?}: {table}"
        );
        assert_eq!((report.misordered, report.unexpected), (0, 0), "{table}");
    }
}

#[tokio::test]
async fn churn_meta_subscriber_sees_every_join_and_leave() {
    let gateway = start_gateway();
    for (transport, subscribe) in [
        (Transport::Websocket, None),
        (
            Transport::Rawsocket,
            Some("com.switchboard.bench.churn".to_string()),
        ),
    ] {
        let options = switchboard_bench::ChurnOptions {
            url: format!("ws://127.0.0.1:{}/ws", gateway.port),
            transport,
            connections: 40,
            concurrency: 8,
            subscribe,
            meta_subscriber: true,
            ..Default::default()
        };
        let report = switchboard_bench::churn::run(&options)
            .await
            .unwrap_or_else(|e| panic!("churn failed: {e:#}"));
        let table = report.table();
        assert_eq!((report.completed, report.failed), (40, 0), "{table}");
        assert_eq!(report.meta_expected, 80, "{table}");
        assert_eq!(
            (report.meta_on_join, report.meta_on_leave),
            (40, 40),
            "{table}"
        );
    }
}

#[tokio::test]
async fn longpoll_fanout_loses_nothing() {
    let gateway = start_gateway();
    for batched in [false, true] {
        let options = switchboard_bench::LongpollOptions {
            url: format!("ws://127.0.0.1:{}/ws", gateway.port),
            sessions: 10,
            events: 10,
            size: 200,
            batched,
            topic: "com.switchboard.bench.longpoll".into(),
            concurrency: 4,
            timeout: Duration::from_secs(30),
            pid: None,
        };
        let report = switchboard_bench::longpoll::run(&options)
            .await
            .unwrap_or_else(|e| panic!("long-poll fan-out failed: {e:#}"));
        let table = report.table();
        assert_eq!((report.expected, report.delivered), (100, 100), "{table}");
    }
}

#[tokio::test]
async fn rpc_answers_every_call_once() {
    let gateway = start_gateway();
    let options = switchboard_bench::RpcOptions {
        url: format!("ws://127.0.0.1:{}/ws", gateway.port),
        callers: 3,
        calls: 50,
        in_flight: 4,
        ..switchboard_bench::RpcOptions::default()
    };
    let report = switchboard_bench::rpc::run(&options)
        .await
        .unwrap_or_else(|e| panic!("rpc failed: {e:#}"));
    let table = report.table();
    assert_eq!((report.results, report.errors), (150, 0), "{table}");
    assert_eq!(report.round_trip.map(|l| l.samples), Some(150), "{table}");
}

/// Held by the tests that load the machine for seconds (the soak, with its timing-bound counts, and the
/// live-data run), so that they do not run at the same time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_counts_every_kind_of_client() {
    let _heavy = HEAVY.lock().await;
    let gateway = start_gateway();
    let pid = gateway.child.id();
    let options = switchboard_bench::SoakOptions {
        url: format!("ws://127.0.0.1:{}/ws", gateway.port),
        pid,
        duration: Duration::from_secs(6),
        sample_interval: Duration::from_secs(1),
        rate: 100.0,
        subscribers: 4,
        stalled: 2,
        stall_hold: Duration::from_secs(2),
        churners: 2,
        churn_hold: Duration::from_millis(300),
        ..Default::default()
    };
    let report = switchboard_bench::soak::run(&options)
        .await
        .unwrap_or_else(|e| panic!("soak run failed: {e:#}"));
    let table = report.table();
    // Six seconds at 100 events/s; the reading subscribers get every event but those in flight at the end.
    assert!((450..=600).contains(&report.published), "{table}");
    assert!(report.delivered >= 4 * (report.published - 50), "{table}");
    assert_eq!(report.subscriber_drops, 0, "{table}");
    assert_eq!(report.publisher_reconnects, 0, "{table}");
    assert!(
        report.churn_cycles >= 4 && report.churn_failures == 0,
        "{table}"
    );
    // Two stalled consumers held 2 s each in 6 s: both are replaced at least once (the last replacement
    // may race the end of the run, which is not counted as a failure).
    assert!(
        report.stalled_opened >= 3 && report.stalled_failures == 0,
        "{table}"
    );
    assert!((6..=8).contains(&report.samples.len()), "{table}");
    assert!(
        report
            .samples
            .iter()
            .all(|s| s.rss_kib > 0 && s.fds.is_some()),
        "{table}"
    );
    assert!(report.elapsed_s < 16.0, "{table}");
}

const HISTORY: &str = r#"
[[realms.history]]
uri = "com.switchboard.bench"
limit = 1000
[[realms.history]]
uri = "com.switchboard.bench.history."
match = "prefix"
limit = 1000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_data_scenarios_run_against_a_gateway_with_history() {
    let _heavy = HEAVY.lock().await;
    let gateway = start_gateway_with(HISTORY);
    let url = format!("ws://127.0.0.1:{}/ws", gateway.port);

    for after_first in [false, true] {
        let options = switchboard_bench::RecoveryOptions {
            url: url.clone(),
            events: 100,
            calls: 5,
            after_first,
            ..Default::default()
        };
        let report = switchboard_bench::recovery::run(&options)
            .await
            .unwrap_or_else(|e| panic!("recovery run failed: {e:#}"));
        let table = report.table();
        assert_eq!(
            report.returned,
            if after_first { 99 } else { 100 },
            "{table}"
        );
        assert!(report.answer_bytes > 100 * 200, "{table}");
        assert!(report.latency.is_some_and(|l| l.samples == 5), "{table}");
    }

    let options = switchboard_bench::FanoutOptions {
        url: url.clone(),
        subscribers: 30,
        events: 20,
        sample_every: 7,
        filters: 3,
        ..Default::default()
    };
    let report = switchboard_bench::fanout::run(&options)
        .await
        .unwrap_or_else(|e| panic!("filtered fan-out failed: {e:#}"));
    let table = report.table();
    assert_eq!(report.filters, 3, "{table}");
    assert_eq!(
        report.delivered, 600,
        "every filter admits every event: {table}"
    );
    assert_eq!(report.misordered, 0, "{table}");
    assert!((190..=205).contains(&report.event_bytes), "{table}");

    let options = switchboard_bench::HistoryMemoryOptions {
        url,
        pid: gateway.child.id(),
        events: 500,
        topics: 5,
        settle_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let report = switchboard_bench::recovery::history_memory(&options)
        .await
        .unwrap_or_else(|e| panic!("history-memory run failed: {e:#}"));
    let table = report.table();
    assert_eq!(report.stored_first_topic, 100, "{table}");
    assert!(report.rss_after_kib > 0, "{table}");
}

//! Ingest: events per second from a web app's emitter to one WAMP subscriber. The generator subscribes
//! (its own client) to a topic unique to the run, then emits E events through the switchboard-emitter
//! crate over JSON-RPC (single `publish` or `publish_batch`), ZeroMQ or AMQP. Each event carries
//! `[sequence, emit_ns, padding]`, so the subscriber measures emit-to-delivery latency and order against
//! the process-wide clock. Events/s = delivered / (last delivery - first emit).

mod emit;
mod report;

use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use switchboard_emitter::{Emitter, DEFAULT_BUFFER};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use emit::{Plan, Tally};
pub use report::IngestReport;

use crate::client::{Connection, Target};
use crate::clock::now_ns;
use crate::report::Latency;
use crate::wire::{event_stamp, EventPayload, Serializer};
use crate::{subscriber, sys};

/// Events per `emit_batch` call unless told otherwise.
pub const DEFAULT_BATCH: usize = 100;
/// Emitter calls in flight for the batching transports unless told otherwise.
pub const DEFAULT_WINDOW: usize = 4;
/// How long the first (warm-up) event may take to arrive: connections are made lazily, and the
/// gateway's AMQP consumer waits briefly after the first subscription before it starts consuming.
const WARMUP: Duration = Duration::from_secs(30);
/// After an emit failure, how long the subscriber may still take for what was confirmed.
const AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The ingestion transport an ingest run goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IngestTransport {
    /// JSON-RPC, one `emit` (one `publish` request) per event.
    Jsonrpc,
    /// JSON-RPC, `emit_batch` (`publish_batch` requests).
    JsonrpcBatch,
    /// ZeroMQ PUSH, `emit_batch`.
    Zmq,
    /// AMQP via RabbitMQ, `emit_batch`.
    Amqp,
}

impl IngestTransport {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonrpc => "jsonrpc",
            Self::JsonrpcBatch => "jsonrpc-batch",
            Self::Zmq => "zmq",
            Self::Amqp => "amqp",
        }
    }
}

impl FromStr for IngestTransport {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        [Self::Jsonrpc, Self::JsonrpcBatch, Self::Zmq, Self::Amqp]
            .into_iter()
            .find(|t| t.name() == text)
            .ok_or_else(|| {
                anyhow!("unknown transport {text:?} (jsonrpc, jsonrpc-batch, zmq, amqp)")
            })
    }
}

/// Settings of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Gateway WebSocket URL, for the subscriber.
    pub url: String,
    /// The ingestion transport.
    pub transport: IngestTransport,
    /// Events to emit.
    pub events: u64,
    /// EVENT frame size at the subscriber, in bytes.
    pub size: usize,
    /// Events per `emit_batch` call (ignored by `jsonrpc`).
    pub batch: usize,
    /// Emitter calls in flight (default: 1 for `jsonrpc`, [`DEFAULT_WINDOW`] otherwise).
    pub window: Option<usize>,
    /// JSON-RPC address (`127.0.0.1:PORT` or `http://...`) or ZeroMQ endpoint (`tcp://127.0.0.1:PORT`).
    pub ingest: Option<String>,
    /// The gateway's `[security]` secret.
    pub secret: String,
    /// RabbitMQ URL (AMQP only).
    pub amqp_url: String,
    /// The gateway's `[ingest.amqp].exchange`.
    pub exchange: String,
    /// The gateway's `[ingest.amqp].queue`.
    pub queue: String,
    /// Topic prefix; the run appends a unique suffix.
    pub topic: String,
    /// How long the run may take from the first emit.
    pub timeout: Duration,
    /// The gateway's process id, to report its CPU time.
    pub pid: Option<u32>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            transport: IngestTransport::JsonrpcBatch,
            events: 50_000,
            size: 200,
            batch: DEFAULT_BATCH,
            window: None,
            ingest: None,
            secret: String::new(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            exchange: "switchboard.events".into(),
            queue: "switchboard.ingest".into(),
            topic: "com.switchboard.bench.ingest".into(),
            timeout: Duration::from_secs(60),
            pid: None,
        }
    }
}

/// Fails unless the host of `address` (`scheme://user@host:port/...` or `host:port`) is 127.0.0.x.
fn check_loopback(address: &str) -> anyhow::Result<()> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 127);
    if !loopback {
        bail!("{address}: the generator only talks to 127.0.0.x");
    }
    Ok(())
}

/// `address` with `scheme://` in front unless it has a scheme already.
fn with_scheme(scheme: &str, address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("{scheme}://{address}")
    }
}

/// The emitter for `options`, buffering at least `buffer` events.
fn emitter(options: &IngestOptions, buffer: usize) -> anyhow::Result<Emitter> {
    let ingest = || {
        options
            .ingest
            .as_deref()
            .ok_or_else(|| anyhow!("--ingest ADDR is required for {}", options.transport.name()))
    };
    let builder = Emitter::builder()
        .secret(options.secret.clone())
        .buffer(buffer.max(DEFAULT_BUFFER))
        .timeout(options.timeout);
    let builder = match options.transport {
        IngestTransport::Jsonrpc | IngestTransport::JsonrpcBatch => {
            let url = with_scheme("http", ingest()?);
            check_loopback(&url)?;
            builder.jsonrpc(url)
        }
        IngestTransport::Zmq => {
            let endpoint = with_scheme("tcp", ingest()?);
            check_loopback(&endpoint)?;
            builder.zmq(endpoint)
        }
        IngestTransport::Amqp => {
            check_loopback(&options.amqp_url)?;
            builder.amqp(&options.amqp_url, &options.exchange, &options.queue)
        }
    };
    builder.build().context("cannot build the emitter")
}

fn describe(transport: IngestTransport, plan: &Plan) -> String {
    match (transport, plan.batch) {
        (IngestTransport::Jsonrpc, _) if plan.window == 1 => {
            "sequential emit(): one JSON-RPC publish request per event".into()
        }
        (_, None) => format!(
            "{} emit() calls in flight (the emitter's worker sends what is buffered together)",
            plan.window
        ),
        (_, Some(batch)) => format!(
            "emit_batch() of {batch}, {} calls in flight (the emitter's one worker sends up to its \
             transport's batch size of what is buffered per round)",
            plan.window
        ),
    }
}

/// Subscribes, emits the events through the chosen transport and reports what arrived.
pub async fn run(options: &IngestOptions) -> anyhow::Result<IngestReport> {
    if options.events == 0 || options.batch == 0 || options.window == Some(0) {
        bail!("events, batch and window must be at least 1");
    }
    crate::clock::init();
    let target = Target::parse(&options.url)?;
    let plan = Plan {
        events: options.events,
        batch: (options.transport != IngestTransport::Jsonrpc).then_some(options.batch),
        window: options.window.unwrap_or(match options.transport {
            IngestTransport::Jsonrpc => 1,
            _ => DEFAULT_WINDOW,
        }),
    };
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let nonce = u64::from(std::process::id()) << 32 | u64::from(wall);
    let topic = format!("{}.r{nonce:x}", options.topic);
    let padding = EventPayload::new(&topic, options.size, Serializer::Json)
        .padding()
        .to_string();
    let emitter = emitter(options, plan.window * plan.batch.unwrap_or(1) + 1)?;

    let mut connection =
        Connection::connect(&target, Serializer::Json, None, WebSocketConfig::default()).await?;
    connection.join().await?;
    connection.subscribe(&topic).await?;
    warm_up(&emitter, &mut connection, &topic).await?;

    let (stop, stopped) = watch::channel(false);
    let mut receiving = tokio::spawn(subscriber::run(connection, true, options.events, stopped));
    let gateway_before = options
        .pid
        .map(|pid| sys::cpu_seconds(Some(pid)))
        .transpose()?;
    let bench_before = sys::cpu_seconds(None)?;
    let first_ns = now_ns();
    let deadline = tokio::time::Instant::now() + options.timeout;
    let tally = tokio::time::timeout_at(deadline, emit::emit_all(&emitter, &topic, &padding, plan))
        .await
        .map_err(|_| anyhow!("emitting did not finish within {:?}", options.timeout))?;
    let emitted_ns = now_ns();
    let wait_until = if tally.failed > 0 {
        deadline.min(tokio::time::Instant::now() + AFTER_FAILURE)
    } else {
        deadline
    };
    let joined = match tokio::time::timeout_at(wait_until, &mut receiving).await {
        Ok(joined) => joined,
        Err(_) => {
            let _ = stop.send(true);
            tokio::time::timeout(AFTER_FAILURE, &mut receiving)
                .await
                .map_err(|_| anyhow!("the subscriber did not stop"))?
        }
    };
    let (mut outcome, held) = joined.context("subscriber task failed")?;
    let gateway_cpu_s = match (options.pid, gateway_before) {
        (Some(pid), Some(before)) => Some(sys::cpu_seconds(Some(pid))? - before),
        _ => None,
    };
    let bench_cpu_s = sys::cpu_seconds(None)? - bench_before;
    held.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), emitter.close()).await;

    let elapsed_s = outcome.last_ns.saturating_sub(first_ns) as f64 / 1e9;
    let body_bytes = emit::stamped(&topic, options.events, &padding)
        .with_id(format!("e-{}", "0".repeat(32)))
        .json_len();
    Ok(IngestReport {
        scenario: "ingest".into(),
        transport: options.transport,
        mode: describe(options.transport, &plan),
        batch: plan.batch,
        window: plan.window,
        events: options.events,
        size: options.size,
        event_bytes: outcome.event_bytes,
        body_bytes,
        emitted: tally.ok,
        emit_failed: tally.failed,
        first_error: tally.first_error,
        emit_s: emitted_ns.saturating_sub(first_ns) as f64 / 1e9,
        delivered: outcome.events,
        lost: tally.ok.saturating_sub(outcome.events),
        misordered: outcome.misordered,
        unexpected: outcome.other,
        elapsed_s,
        events_per_s: if elapsed_s > 0.0 {
            outcome.events as f64 / elapsed_s
        } else {
            0.0
        },
        latency: Latency::from_ns(&mut outcome.latencies),
        gateway_cpu_s,
        bench_cpu_s,
    })
}

/// Emits event 0 and waits until the subscriber has it: every connection is up and the gateway's
/// consumer is running before the clock starts.
async fn warm_up(
    emitter: &Emitter,
    connection: &mut Connection,
    topic: &str,
) -> anyhow::Result<()> {
    let arrived = async {
        emitter
            .emit(emit::stamped(topic, 0, ""))
            .await
            .context("the warm-up event was not confirmed")?;
        loop {
            let message = connection.recv().await?;
            if event_stamp(&message).is_some_and(|(sequence, _)| sequence == 0) {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(WARMUP, arrived)
        .await
        .map_err(|_| anyhow!("the warm-up event did not arrive within {WARMUP:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_pass() {
        for ok in [
            "127.0.0.1:8081",
            "http://127.0.0.1:8081",
            "tcp://127.0.0.2:5560",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "http://localhost:1/",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:8081",
            "tcp://example.com:5560",
            "amqp://u:p@192.168.1.1/",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
        assert_eq!(with_scheme("http", "127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(with_scheme("tcp", "tcp://127.0.0.1:1"), "tcp://127.0.0.1:1");
    }

    #[test]
    fn transports_parse_by_name() {
        for name in ["jsonrpc", "jsonrpc-batch", "zmq", "amqp"] {
            assert_eq!(name.parse::<IngestTransport>().expect(name).name(), name);
        }
        assert!("http".parse::<IngestTransport>().is_err());
    }
}

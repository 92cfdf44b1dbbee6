//! `switchboard-bench`: load scenarios against a running Switchboard gateway.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use switchboard_bench::{churn, ChurnOptions, Transport};
use switchboard_bench::{
    fanout, idle, latency, smoke, soak, FanoutOptions, IdleOptions, SoakOptions,
};
use switchboard_bench::{ingest, IngestOptions, IngestTransport, LatencyOptions, Serializer};
use switchboard_bench::{longpoll, LongpollOptions};
use switchboard_bench::{recovery, HistoryMemoryOptions, RecoveryOptions};
use switchboard_bench::{rpc, RpcOptions};

/// Load generator for the Switchboard gateway (WAMP v2 over WebSocket or RawSocket).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Print one JSON line instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Runtime worker threads (default: the CPUs this process may run on; 1 = single-threaded).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

/// Where the subscribers and the publisher of `fanout` and `latency` connect, beyond `--url`: the
/// nodes of a cluster (issue #14).
#[derive(Args)]
struct Nodes {
    /// A further subscriber URL (another cluster node; repeatable): subscribers are spread round robin
    /// over --url and these.
    #[arg(long = "spread-url")]
    spread_urls: Vec<String>,
    /// The publisher's URL (default: --url), e.g. node 1 while the subscribers are on nodes 2 and 3.
    #[arg(long)]
    publish_url: Option<String>,
}

/// Settings shared by the scenarios that publish.
#[derive(Args)]
struct Common {
    /// Gateway WebSocket URL (127.0.0.x only).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// EVENT frame size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// WAMP serializer: json or msgpack.
    #[arg(long, default_value = "json")]
    serializer: Serializer,
    /// Every K-th subscriber (and the first) decodes events and measures latency.
    #[arg(long, default_value_t = 100)]
    sample: usize,
    /// Topic to publish on.
    #[arg(long, default_value = "com.switchboard.bench")]
    topic: String,
    /// Seconds deliveries may take after the first publish.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
}

#[derive(Subcommand)]
enum Command {
    /// N subscribers on one topic, E events from one publisher: deliveries/s, losses, latency.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        nodes: Nodes,
        /// Subscriber connections.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Events to publish.
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Events per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Connections opened at once.
        #[arg(long, default_value_t = 256)]
        connect_concurrency: usize,
        /// Connections per source address (127.0.0.1, then .2, ...) once there are more than this.
        #[arg(long, default_value_t = 20_000)]
        per_source: usize,
        /// Subscribe with this pattern instead of the topic (with --match).
        #[arg(long, requires = "match_policy")]
        pattern: Option<String>,
        /// The pattern's match policy: prefix or wildcard.
        #[arg(long = "match", value_parser = ["prefix", "wildcard"], requires = "pattern")]
        match_policy: Option<String>,
        /// Distinct server-side filters: subscriber i subscribes with `_filter` {"n": {"$gte": -(i % N)}},
        /// each admitting every event (implies --kwargs).
        #[arg(long, default_value_t = 0)]
        filters: usize,
        /// Publish kwargs {"n": sequence} with every event (the payload of a --filters run, unfiltered).
        #[arg(long)]
        kwargs: bool,
        /// Transport of the subscribers and the publisher: websocket or rawsocket (the URL's host and
        /// port; RawSocket shares the HTTP port).
        #[arg(long, default_value = "websocket")]
        transport: Transport,
        /// The gateway's process id, to report its CPU time from the publisher's start to the last
        /// delivery.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Sessions that connect, join, (subscribe,) leave and close, a bounded number at a time:
    /// connections/s, and with --meta-subscriber the wamp.session.on_join/on_leave events one session got.
    Churn(ChurnArgs),
    /// N long-poll (/lp) subscribers: deliveries/s of E events from a WebSocket publisher, or with
    /// --events 0 the gateway's memory per idle session (each keeping one receive pending).
    Longpoll(LongpollArgs),
    /// Recovery: publish E events to a topic with history, then time R get_events calls.
    Recovery {
        #[command(flatten)]
        common: Common,
        /// Events to publish (the topic's history must keep them all).
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// get_events calls to time.
        #[arg(long, default_value_t = 200)]
        calls: usize,
        /// Ask with after_publication=<first event> (E-1 events back) instead of limit=E.
        #[arg(long)]
        after_first: bool,
    },
    /// Memory per stored event: publish E events across T topics that keep history, read the gateway's RSS.
    HistoryMemory {
        /// Gateway WebSocket URL (127.0.0.x only).
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// The gateway's process id (its /proc/PID/status is read).
        #[arg(long)]
        pid: u32,
        /// Events to publish.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Topics the events are spread over (TOPIC.0 ... TOPIC.T-1, round robin).
        #[arg(long, default_value_t = 100)]
        topics: usize,
        /// EVENT frame size in bytes.
        #[arg(long, default_value_t = 200)]
        size: usize,
        /// Topic prefix (the gateway config must keep history for it).
        #[arg(long, default_value = "com.switchboard.bench.history")]
        topic: String,
        /// WAMP serializer: json or msgpack.
        #[arg(long, default_value = "json")]
        serializer: Serializer,
    },
    /// A fixed publish rate for a fixed time: publish-to-delivery latency percentiles.
    Latency {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        nodes: Nodes,
        /// Subscriber connections.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Events per second.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 10.0)]
        duration_s: f64,
    },
    /// One echo callee, C callers with K calls in flight each: calls/s and CALL-to-RESULT round trips
    /// (with --callee-url on another cluster node, every call crosses nodes).
    Rpc {
        /// The callers' gateway WebSocket URL (127.0.0.x only).
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// The callee's gateway URL (default: --url), e.g. another node of a cluster.
        #[arg(long)]
        callee_url: Option<String>,
        /// Caller connections.
        #[arg(long, default_value_t = 10)]
        callers: usize,
        /// Calls per caller.
        #[arg(long, default_value_t = 2000)]
        calls: u64,
        /// Calls each caller keeps in flight.
        #[arg(long, default_value_t = 10)]
        in_flight: usize,
        /// Bytes of the call's argument.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// WAMP serializer: json or msgpack.
        #[arg(long, default_value = "json")]
        serializer: Serializer,
    },
    /// N joined, subscribed, idle connections: the gateway's resident memory per connection.
    Idle {
        /// Gateway WebSocket URL (127.0.0.x only).
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// The gateway's process id (its /proc/PID/status is read).
        #[arg(long)]
        pid: u32,
        /// Subscribe each connection to its own topic.
        #[arg(long)]
        distinct_topics: bool,
        /// Connections per source address (127.0.0.1, then .2, ...) once there are more than this.
        #[arg(long, default_value_t = 20_000)]
        per_source: usize,
        /// WAMP serializer: json or msgpack.
        #[arg(long, default_value = "json")]
        serializer: Serializer,
        /// Transport of the connections: websocket or rawsocket.
        #[arg(long, default_value = "websocket")]
        transport: Transport,
    },
    /// One subscriber, E events emitted through switchboard-emitter: events/s, losses, latency.
    Ingest(IngestArgs),
    /// Publishing, churn and stalled consumers for a fixed time: does the gateway's memory stay flat?
    Soak(SoakArgs),
    /// 10 subscribers, 10 events; exits non-zero on any loss.
    Smoke {
        /// Gateway WebSocket URL (127.0.0.x only).
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// WAMP serializer: json or msgpack.
        #[arg(long, default_value = "json")]
        serializer: Serializer,
    },
}

/// Settings of the ingest scenario.
#[derive(Args)]
struct IngestArgs {
    /// Gateway WebSocket URL, for the subscriber (127.0.0.x only).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// jsonrpc (one publish per event), jsonrpc-batch, zmq or amqp.
    #[arg(long)]
    transport: IngestTransport,
    /// Events to emit.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// EVENT frame size at the subscriber, in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Events per emit_batch call (jsonrpc-batch, zmq, amqp).
    #[arg(long, default_value_t = ingest::DEFAULT_BATCH)]
    batch: usize,
    /// Emitter calls in flight (default 1 for jsonrpc, 4 otherwise).
    #[arg(long)]
    window: Option<usize>,
    /// JSON-RPC address (127.0.0.1:PORT) or ZeroMQ endpoint (tcp://127.0.0.1:PORT).
    #[arg(long)]
    ingest: Option<String>,
    /// The gateway's [security] secret.
    #[arg(long, env = "SWITCHBOARD_SECRET")]
    secret: String,
    /// RabbitMQ URL (amqp).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The gateway's [ingest.amqp].exchange.
    #[arg(long, default_value = "switchboard.events")]
    exchange: String,
    /// The gateway's [ingest.amqp].queue.
    #[arg(long, default_value = "switchboard.ingest")]
    queue: String,
    /// Topic prefix (a unique suffix is added per run).
    #[arg(long, default_value = "com.switchboard.bench.ingest")]
    topic: String,
    /// Seconds the run may take from the first emit.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// The gateway's process id, to report its CPU time during the run.
    #[arg(long)]
    pid: Option<u32>,
}

/// Settings of the churn scenario.
#[derive(Args)]
struct ChurnArgs {
    /// Gateway WebSocket URL (127.0.0.x only; RawSocket uses its host and port).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Transport of the churned sessions: websocket or rawsocket.
    #[arg(long, default_value = "websocket")]
    transport: Transport,
    /// WAMP serializer: json or msgpack.
    #[arg(long, default_value = "json")]
    serializer: Serializer,
    /// Sessions to open and close.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Sessions in progress at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Each session subscribes to this topic before it leaves.
    #[arg(long)]
    subscribe: Option<String>,
    /// One extra session subscribes to wamp.session.on_join and on_leave and counts what it gets.
    #[arg(long)]
    meta_subscriber: bool,
    /// Connections per source address (127.0.0.1, then .2, ...) once there are more than this.
    #[arg(long, default_value_t = 20_000)]
    per_source: usize,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// The gateway's process id, to report its CPU time during the churn.
    #[arg(long)]
    pid: Option<u32>,
}

impl From<ChurnArgs> for ChurnOptions {
    fn from(args: ChurnArgs) -> Self {
        ChurnOptions {
            url: args.url,
            transport: args.transport,
            serializer: args.serializer,
            connections: args.connections,
            concurrency: args.concurrency,
            subscribe: args.subscribe,
            meta_subscriber: args.meta_subscriber,
            per_source: args.per_source,
            timeout: Duration::from_secs(args.timeout_s),
            pid: args.pid,
            ..ChurnOptions::default()
        }
    }
}

/// Settings of the longpoll scenario.
#[derive(Args)]
struct LongpollArgs {
    /// Gateway WebSocket URL (127.0.0.x only; long-poll uses its host and port, the publisher the URL).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Long-poll sessions.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Events to publish; 0: measure idle memory per session instead (needs --pid).
    #[arg(long, default_value_t = 100)]
    events: u64,
    /// EVENT size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Speak wamp.2.json.batched (several messages per receive) instead of wamp.2.json.
    #[arg(long)]
    batched: bool,
    /// Topic.
    #[arg(long, default_value = "com.switchboard.bench.longpoll")]
    topic: String,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds deliveries may take after the first publish.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// The gateway's process id (idle: its RSS; fan-out: its CPU time).
    #[arg(long)]
    pid: Option<u32>,
}

/// Settings of the soak scenario.
#[derive(Args)]
struct SoakArgs {
    /// Gateway WebSocket URL (127.0.0.x only).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// The gateway's process id (its /proc/PID is sampled).
    #[arg(long)]
    pid: u32,
    /// Seconds to run.
    #[arg(long, default_value_t = 600)]
    duration_s: u64,
    /// Seconds between two samples of the gateway's memory.
    #[arg(long, default_value_t = 5)]
    sample_s: u64,
    /// Events published per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// EVENT frame size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// WAMP serializer: json or msgpack.
    #[arg(long, default_value = "json")]
    serializer: Serializer,
    /// Subscribers that read everything for the whole run.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Subscribers that stop reading after SUBSCRIBED (each replaced every --stall-hold-s).
    #[arg(long, default_value_t = 20)]
    stalled: usize,
    /// Seconds a stalled consumer stays before a new one takes its place.
    #[arg(long, default_value_t = 150)]
    stall_hold_s: u64,
    /// Clients that connect, subscribe, read and leave, over and over.
    #[arg(long, default_value_t = 8)]
    churners: usize,
    /// Milliseconds a churning client stays connected.
    #[arg(long, default_value_t = 1000)]
    churn_hold_ms: u64,
    /// Largest RSS growth (last third against first third) still reported as flat, in percent.
    #[arg(long, default_value_t = 10.0)]
    flat_tolerance_pct: f64,
}

impl From<SoakArgs> for SoakOptions {
    fn from(args: SoakArgs) -> Self {
        SoakOptions {
            url: args.url,
            pid: args.pid,
            duration: Duration::from_secs(args.duration_s),
            sample_interval: Duration::from_secs(args.sample_s),
            rate: args.rate,
            size: args.size,
            serializer: args.serializer,
            subscribers: args.subscribers,
            stalled: args.stalled,
            stall_hold: Duration::from_secs(args.stall_hold_s),
            churners: args.churners,
            churn_hold: Duration::from_millis(args.churn_hold_ms),
            flat_tolerance_pct: args.flat_tolerance_pct,
            ..SoakOptions::default()
        }
    }
}

impl From<IngestArgs> for IngestOptions {
    fn from(args: IngestArgs) -> Self {
        IngestOptions {
            url: args.url,
            transport: args.transport,
            events: args.events,
            size: args.size,
            batch: args.batch,
            window: args.window,
            ingest: args.ingest,
            secret: args.secret,
            amqp_url: args.amqp_url,
            exchange: args.exchange,
            queue: args.queue,
            topic: args.topic,
            timeout: Duration::from_secs(args.timeout_s),
            pid: args.pid,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli.command, json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(json: bool, table: String, report: &impl Serialize) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

async fn run(command: Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Fanout {
            common,
            nodes,
            subscribers,
            events,
            rate,
            connect_concurrency,
            per_source,
            pattern,
            match_policy,
            filters,
            kwargs,
            transport,
            pid,
        } => {
            let options = FanoutOptions {
                transport,
                pid,
                pattern: match_policy.zip(pattern),
                url: common.url,
                spread_urls: nodes.spread_urls,
                publish_url: nodes.publish_url,
                subscribers,
                events,
                size: common.size,
                serializer: common.serializer,
                rate,
                sample_every: common.sample,
                topic: common.topic,
                timeout: Duration::from_secs(common.timeout_s),
                connect_concurrency,
                per_source,
                filters,
                kwargs,
                ..FanoutOptions::default()
            };
            let report = fanout::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Recovery {
            common,
            events,
            calls,
            after_first,
        } => {
            let options = RecoveryOptions {
                url: common.url,
                serializer: common.serializer,
                size: common.size,
                topic: common.topic,
                events,
                calls,
                after_first,
                timeout: Duration::from_secs(common.timeout_s),
            };
            let report = recovery::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::HistoryMemory {
            url,
            pid,
            events,
            topics,
            size,
            topic,
            serializer,
        } => {
            let options = HistoryMemoryOptions {
                url,
                pid,
                events,
                topics,
                size,
                topic,
                serializer,
                ..HistoryMemoryOptions::default()
            };
            let report = recovery::history_memory(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Latency {
            common,
            nodes,
            subscribers,
            rate,
            duration_s,
        } => {
            let options = LatencyOptions {
                url: common.url,
                spread_urls: nodes.spread_urls,
                publish_url: nodes.publish_url,
                subscribers,
                rate,
                duration_s,
                size: common.size,
                serializer: common.serializer,
                sample_every: common.sample,
                topic: common.topic,
                timeout: Duration::from_secs(common.timeout_s),
            };
            let report = latency::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Rpc {
            url,
            callee_url,
            callers,
            calls,
            in_flight,
            size,
            serializer,
        } => {
            let options = RpcOptions {
                url,
                callee_url,
                callers,
                calls,
                in_flight,
                size,
                serializer,
                ..RpcOptions::default()
            };
            let report = rpc::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Idle {
            url,
            connections,
            pid,
            distinct_topics,
            serializer,
            per_source,
            transport,
        } => {
            let options = IdleOptions {
                transport,
                url,
                connections,
                pid,
                distinct_topics,
                serializer,
                per_source,
                ..IdleOptions::default()
            };
            let report = idle::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Ingest(args) => {
            let report = ingest::run(&args.into()).await?;
            print(json, report.table(), &report)
        }
        Command::Churn(args) => {
            let report = churn::run(&args.into()).await?;
            print(json, report.table(), &report)
        }
        Command::Longpoll(args) => {
            let options = LongpollOptions {
                url: args.url,
                sessions: args.sessions,
                events: args.events,
                size: args.size,
                batched: args.batched,
                topic: args.topic,
                concurrency: args.concurrency,
                timeout: Duration::from_secs(args.timeout_s),
                pid: args.pid,
            };
            let report = longpoll::run(&options).await?;
            print(json, report.table(), &report)
        }
        Command::Soak(args) => {
            let report = soak::run(&args.into()).await?;
            print(json, report.table(), &report)
        }
        Command::Smoke { url, serializer } => {
            let report = smoke::run(&url, serializer).await?;
            print(json, report.table(), &report)
        }
    }
}

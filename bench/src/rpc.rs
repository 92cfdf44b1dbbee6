//! RPC: one callee echoes, C callers each keep K calls in flight for N calls: calls/s and the CALL-to-RESULT
//! round trip. With `callee_url` on another cluster node every call crosses nodes (caller's node ->
//! RabbitMQ -> callee's node and back), which is what this scenario was written to measure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{publisher_buffers, Connection, Target};
use crate::report::Latency;
use crate::wire::{code, Serializer};

/// INVOCATION, REGISTER, REGISTERED and YIELD (not in `wire::code`, which the pub/sub scenarios share).
const INVOCATION: u64 = 68;
const REGISTER: u64 = 64;
const REGISTERED: u64 = 65;
const YIELD: u64 = 70;

/// Settings of an RPC run.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// The callers' gateway URL.
    pub url: String,
    /// The callee's gateway URL (default: `url`); another node's for calls across nodes.
    pub callee_url: Option<String>,
    /// Caller connections.
    pub callers: usize,
    /// Calls per caller.
    pub calls: u64,
    /// Calls each caller keeps in flight.
    pub in_flight: usize,
    /// Bytes of the argument string.
    pub size: usize,
    /// Serializer of every connection.
    pub serializer: Serializer,
    /// The procedure (unique per run, so that two runs do not share a callee).
    pub procedure: String,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            callee_url: None,
            callers: 10,
            calls: 2000,
            in_flight: 10,
            size: 100,
            serializer: Serializer::Json,
            procedure: format!("com.switchboard.bench.rpc.{}", std::process::id()),
        }
    }
}

/// What an RPC run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RpcReport {
    /// `rpc`.
    pub scenario: &'static str,
    /// Whether the callee was on another URL than the callers.
    pub across_urls: bool,
    /// Caller connections.
    pub callers: usize,
    /// Calls each kept in flight.
    pub in_flight: usize,
    /// Calls answered with a RESULT.
    pub results: u64,
    /// Calls answered with an ERROR.
    pub errors: u64,
    /// Seconds from the first CALL to the last answer.
    pub elapsed_s: f64,
    /// Results per second.
    pub calls_per_s: f64,
    /// CALL-to-RESULT round trips.
    pub round_trip: Option<Latency>,
}

impl RpcReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("scenario", self.scenario.to_string()),
            ("callee on another URL", self.across_urls.to_string()),
            ("callers", self.callers.to_string()),
            ("in flight per caller", self.in_flight.to_string()),
            ("results", self.results.to_string()),
            ("errors", self.errors.to_string()),
            ("elapsed (s)", format!("{:.3}", self.elapsed_s)),
            ("calls/s", format!("{:.0}", self.calls_per_s)),
        ];
        if let Some(l) = &self.round_trip {
            rows.push((
                "round trip p50/p99/max (us)",
                format!("{:.0} / {:.0} / {:.0}", l.p50_us, l.p99_us, l.max_us),
            ));
        }
        rows.iter().map(|(k, v)| format!("{k:<28} {v}\n")).collect()
    }
}

async fn joined(url: &str, serializer: Serializer) -> anyhow::Result<Connection> {
    let target = Target::parse(url)?;
    let mut connection =
        Connection::connect(&target, serializer, None, publisher_buffers()).await?;
    connection.join().await?;
    Ok(connection)
}

/// Registers `procedure` on `connection` and waits for REGISTERED.
async fn register(connection: &mut Connection, procedure: &str) -> anyhow::Result<()> {
    connection
        .send(&json!([REGISTER, 1, {}, procedure]))
        .await?;
    let registered = tokio::time::timeout(Duration::from_secs(10), connection.recv()).await??;
    if registered.get(0).and_then(Value::as_u64) != Some(REGISTERED) {
        bail!("expected REGISTERED, got {registered}");
    }
    Ok(())
}

/// Answers every INVOCATION with its arguments until the gateway closes the connection.
async fn serve(mut connection: Connection) -> anyhow::Result<()> {
    while let Ok(message) = connection.recv().await {
        if message.get(0).and_then(Value::as_u64) != Some(INVOCATION) {
            continue;
        }
        let request = message.get(1).cloned().unwrap_or(Value::Null);
        let args = message.get(4).cloned().unwrap_or_else(|| json!([]));
        connection.feed(&json!([YIELD, request, {}, args])).await?;
        connection.flush().await?;
    }
    Ok(())
}

/// One caller: `calls` calls with `in_flight` outstanding; returns (results, errors, round trips in ns).
async fn caller(
    mut connection: Connection,
    options: RpcOptions,
) -> anyhow::Result<(u64, u64, Vec<u64>)> {
    let argument = json!(["x".repeat(options.size)]);
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut next = 1u64;
    let (mut results, mut errors) = (0u64, 0u64);
    let mut round_trips = Vec::with_capacity(options.calls as usize);
    while results + errors < options.calls {
        while sent_at.len() < options.in_flight && next <= options.calls {
            let call = json!([code::CALL, next, {}, options.procedure, argument]);
            connection.feed(&call).await?;
            sent_at.insert(next, Instant::now());
            next += 1;
        }
        connection.flush().await?;
        let message = tokio::time::timeout(Duration::from_secs(30), connection.recv())
            .await
            .context("no answer within 30 s")??;
        let kind = message.get(0).and_then(Value::as_u64);
        let (request, ok) = match kind {
            Some(code::RESULT) => (message.get(1).and_then(Value::as_u64), true),
            Some(code::ERROR) => (message.get(2).and_then(Value::as_u64), false),
            _ => continue,
        };
        let started = request
            .and_then(|r| sent_at.remove(&r))
            .ok_or_else(|| anyhow!("an answer to no call in flight: {message}"))?;
        if ok {
            results += 1;
            round_trips.push(started.elapsed().as_nanos() as u64);
        } else {
            errors += 1;
        }
    }
    connection.close().await;
    Ok((results, errors, round_trips))
}

/// Runs the scenario and reports it.
pub async fn run(options: &RpcOptions) -> anyhow::Result<RpcReport> {
    if options.callers == 0 || options.calls == 0 || options.in_flight == 0 {
        bail!("callers, calls and in-flight must be positive");
    }
    let callee_url = options.callee_url.as_deref().unwrap_or(&options.url);
    let mut callee_connection = joined(callee_url, options.serializer).await?;
    let procedure = options.procedure.clone();
    register(&mut callee_connection, &procedure).await?;
    let serving = tokio::spawn(serve(callee_connection));
    let mut connections = Vec::with_capacity(options.callers);
    for _ in 0..options.callers {
        connections.push(joined(&options.url, options.serializer).await?);
    }
    // Across nodes the registration travels as a message: wait until the callers' node routes to it.
    wait_until_routed(&mut connections[0], &procedure).await?;
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|connection| tokio::spawn(caller(connection, options.clone())))
        .collect();
    let (mut results, mut errors, mut round_trips) = (0, 0, Vec::new());
    for task in tasks {
        let (r, e, mut rt) = task.await??;
        results += r;
        errors += e;
        round_trips.append(&mut rt);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    serving.abort();
    Ok(RpcReport {
        scenario: "rpc",
        across_urls: callee_url != options.url,
        callers: options.callers,
        in_flight: options.in_flight,
        results,
        errors,
        elapsed_s,
        calls_per_s: results as f64 / elapsed_s,
        round_trip: Latency::from_ns(&mut round_trips),
    })
}

async fn wait_until_routed(connection: &mut Connection, procedure: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connection
            .call(procedure, json!(["probe"]), json!({}))
            .await
        {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => return Err(error.context("the callee never became callable")),
        }
    }
}

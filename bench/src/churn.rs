//! Connection churn: N short sessions, a bounded number at a time, each opening a connection (TCP and
//! the WebSocket or RawSocket handshake), joining (HELLO/WELCOME), optionally subscribing to one topic,
//! and leaving (GOODBYE/GOODBYE, then close). Reports sessions per second and, with a meta subscriber
//! (one extra session subscribed to `wamp.session.on_join` and `wamp.session.on_leave`), how many meta
//! events it received: two per churned session when none is lost.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{small_buffers, source_address, Connection, Target};
use crate::report::{table, Latency};
use crate::sys;
use crate::wire::{code, Serializer, Transport};

/// The session meta topics the meta subscriber listens to.
pub const ON_JOIN: &str = "wamp.session.on_join";
/// See [`ON_JOIN`].
pub const ON_LEAVE: &str = "wamp.session.on_leave";

/// Settings of a churn run.
#[derive(Debug, Clone)]
pub struct ChurnOptions {
    /// Gateway WebSocket URL (`ws://127.0.0.x:PORT/ws`; RawSocket uses its host and port).
    pub url: String,
    /// Transport of every churned session (the meta subscriber uses WebSocket).
    pub transport: Transport,
    /// Serializer of every session.
    pub serializer: Serializer,
    /// Sessions to open and close.
    pub connections: usize,
    /// Sessions in progress at once.
    pub concurrency: usize,
    /// Each session subscribes to this topic before leaving (`None`: it only joins).
    pub subscribe: Option<String>,
    /// Start one extra session subscribed to the session meta events and count them.
    pub meta_subscriber: bool,
    /// Connections per source address before moving on to the next 127.0.0.x.
    pub per_source: usize,
    /// How long the whole run may take.
    pub timeout: Duration,
    /// How long the meta subscriber waits for the last meta events after the last session left.
    pub meta_grace: Duration,
    /// The gateway's process id: its CPU time during the churn is reported.
    pub pid: Option<u32>,
}

impl Default for ChurnOptions {
    fn default() -> Self {
        ChurnOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            transport: Transport::Websocket,
            serializer: Serializer::Json,
            connections: 10_000,
            concurrency: 50,
            subscribe: None,
            meta_subscriber: false,
            per_source: 20_000,
            timeout: Duration::from_secs(300),
            meta_grace: Duration::from_secs(10),
            pid: None,
        }
    }
}

/// What a churn run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// Always `churn`.
    pub scenario: String,
    /// Transport of the churned sessions.
    pub transport: Transport,
    /// Their serializer.
    pub serializer: Serializer,
    /// Sessions asked for.
    pub connections: usize,
    /// Sessions in progress at once.
    pub concurrency: usize,
    /// Whether each session subscribed to one topic.
    pub subscribe: bool,
    /// Whether a meta subscriber was listening.
    pub meta_subscriber: bool,
    /// Sessions that opened, joined, (subscribed,) and got GOODBYE back.
    pub completed: usize,
    /// Sessions that failed at some step.
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Seconds from the first connect to the last session closed.
    pub elapsed_s: f64,
    /// Completed sessions per second over `elapsed_s`.
    pub connections_per_s: f64,
    /// Time of one session, connect to closed (the `_us` fields are microseconds).
    pub session_time: Option<Latency>,
    /// Meta events expected: 2 per completed session (0 without a meta subscriber).
    pub meta_expected: u64,
    /// `wamp.session.on_join` events the meta subscriber received.
    pub meta_on_join: u64,
    /// `wamp.session.on_leave` events the meta subscriber received.
    pub meta_on_leave: u64,
    /// The gateway's CPU time (user + system) from the first connect to the last session closed, when
    /// its pid was given.
    pub gateway_cpu_s: Option<f64>,
}

impl ChurnReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("scenario", self.scenario.clone()),
            ("transport", format!("{:?}", self.transport).to_lowercase()),
            (
                "serializer",
                format!("{:?}", self.serializer).to_lowercase(),
            ),
            ("connections", self.connections.to_string()),
            ("concurrency", self.concurrency.to_string()),
            ("subscribe", self.subscribe.to_string()),
            ("meta subscriber", self.meta_subscriber.to_string()),
            ("completed", self.completed.to_string()),
            ("failed", self.failed.to_string()),
            ("elapsed (s)", format!("{:.3}", self.elapsed_s)),
            ("connections/s", format!("{:.0}", self.connections_per_s)),
        ];
        if let Some(error) = &self.first_error {
            rows.push(("first error", error.clone()));
        }
        if let Some(cpu) = self.gateway_cpu_s {
            let per = cpu * 1e6 / self.completed.max(1) as f64;
            rows.push((
                "gateway CPU (s)",
                format!("{cpu:.2} ({per:.0} us per session)"),
            ));
        }
        if let Some(t) = &self.session_time {
            rows.push(("session p50 (ms)", format!("{:.3}", t.p50_us / 1000.0)));
            rows.push(("session p99 (ms)", format!("{:.3}", t.p99_us / 1000.0)));
        }
        if self.meta_subscriber {
            rows.push(("meta events expected", self.meta_expected.to_string()));
            rows.push(("meta on_join", self.meta_on_join.to_string()));
            rows.push(("meta on_leave", self.meta_on_leave.to_string()));
        }
        table(&rows)
    }
}

/// One churned session: connect, join, optionally subscribe, leave.
async fn one_session(
    target: &Target,
    serializer: Serializer,
    source: Option<Ipv4Addr>,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let mut connection = Connection::connect(target, serializer, source, small_buffers()).await?;
    connection.join().await?;
    if let Some(topic) = topic {
        connection.subscribe(topic).await?;
    }
    connection.leave().await
}

/// Meta events counted by the meta subscriber: (on_join, on_leave).
type MetaCounts = (u64, u64);

/// Joins a session subscribed to [`ON_JOIN`] and [`ON_LEAVE`] (over WebSocket).
async fn meta_session(
    target: &Target,
    serializer: Serializer,
) -> anyhow::Result<(Connection, u64, u64)> {
    let target = target.clone().over(Transport::Websocket);
    let mut connection = Connection::connect(&target, serializer, None, small_buffers()).await?;
    connection.join().await?;
    let join = connection
        .subscribe(ON_JOIN)
        .await
        .context("subscribing to on_join")?;
    let leave = connection
        .subscribe(ON_LEAVE)
        .await
        .context("subscribing to on_leave")?;
    Ok((connection, join, leave))
}

/// Counts EVENTs of subscriptions `join` and `leave` until `done` says the churn is over and `expected`
/// (sent through it) arrived, or `grace` passed after that.
async fn count_meta(
    mut connection: Connection,
    join: u64,
    leave: u64,
    mut done: watch::Receiver<Option<u64>>,
    grace: Duration,
) -> (MetaCounts, Option<String>) {
    let (mut joins, mut leaves) = (0u64, 0u64);
    let mut give_up: Option<tokio::time::Instant> = None;
    let error = loop {
        let expected = *done.borrow();
        if let Some(expected) = expected {
            if joins + leaves >= expected {
                break None;
            }
            give_up.get_or_insert_with(|| tokio::time::Instant::now() + grace);
        }
        let until =
            give_up.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let message = tokio::select! {
            message = connection.recv() => message,
            changed = done.changed(), if give_up.is_none() => {
                if changed.is_err() {
                    break Some("churn ended without a count".into());
                }
                continue;
            }
            _ = tokio::time::sleep_until(until) => break None,
        };
        match message {
            Ok(message) if message.get(0).and_then(Value::as_u64) == Some(code::EVENT) => {
                match message.get(1).and_then(Value::as_u64) {
                    Some(id) if id == join => joins += 1,
                    Some(id) if id == leave => leaves += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(error) => break Some(format!("meta subscriber: {error:#}")),
        }
    };
    connection.close().await;
    ((joins, leaves), error)
}

/// Runs the churn scenario and reports it.
pub async fn run(options: &ChurnOptions) -> anyhow::Result<ChurnReport> {
    if options.connections == 0 || options.concurrency == 0 {
        bail!("connections and concurrency must be at least 1");
    }
    if options.concurrency > 10_000 {
        bail!("concurrency above 10,000 would approach the descriptor limit");
    }
    let target = Target::parse(&options.url)?.over(options.transport);
    sys::raise_fd_limit(options.concurrency as u64 + 256);
    let (done, done_rx) = watch::channel(None);
    let meta = match options.meta_subscriber {
        true => {
            let (connection, join, leave) = meta_session(&target, options.serializer).await?;
            let grace = options.meta_grace;
            Some(tokio::spawn(count_meta(
                connection, join, leave, done_rx, grace,
            )))
        }
        false => None,
    };

    let semaphore = Arc::new(Semaphore::new(options.concurrency));
    let mut tasks = JoinSet::new();
    let (mut completed, mut failed, mut first_error) = (0usize, 0usize, None);
    let mut times = Vec::with_capacity(options.connections);
    let cpu_before = options
        .pid
        .map(|pid| sys::cpu_seconds(Some(pid)))
        .transpose()?;
    let started = Instant::now();
    let churn = async {
        for index in 0..options.connections {
            let source = source_address(index, options.connections, options.per_source)?;
            let permit = Arc::clone(&semaphore).acquire_owned().await?;
            let (target, serializer) = (target.clone(), options.serializer);
            let topic = options.subscribe.clone();
            tasks.spawn(async move {
                let begun = Instant::now();
                let result = one_session(&target, serializer, source, topic.as_deref()).await;
                drop(permit);
                (result, begun.elapsed())
            });
            // Reap what finished, so the set stays about `concurrency` long.
            while let Some(joined) = tasks.try_join_next() {
                tally(
                    joined,
                    &mut completed,
                    &mut failed,
                    &mut first_error,
                    &mut times,
                );
            }
        }
        while let Some(joined) = tasks.join_next().await {
            tally(
                joined,
                &mut completed,
                &mut failed,
                &mut first_error,
                &mut times,
            );
        }
        anyhow::Ok(())
    };
    let finished = tokio::time::timeout(options.timeout, churn).await;
    let elapsed_s = started.elapsed().as_secs_f64();
    let gateway_cpu_s = match (options.pid, cpu_before) {
        (Some(pid), Some(before)) => Some(sys::cpu_seconds(Some(pid))? - before),
        _ => None,
    };
    tasks.abort_all();
    match finished {
        Ok(result) => result?,
        Err(_) => {
            first_error.get_or_insert(format!(
                "run timed out after {} s",
                options.timeout.as_secs()
            ));
        }
    }

    let meta_expected = if meta.is_some() {
        2 * completed as u64
    } else {
        0
    };
    let _ = done.send(Some(meta_expected));
    let (mut meta_on_join, mut meta_on_leave) = (0, 0);
    if let Some(meta) = meta {
        let ((joins, leaves), error) = meta.await.context("meta subscriber task failed")?;
        (meta_on_join, meta_on_leave) = (joins, leaves);
        if let Some(error) = error {
            first_error.get_or_insert(error);
        }
    }
    Ok(ChurnReport {
        scenario: "churn".into(),
        transport: options.transport,
        serializer: options.serializer,
        connections: options.connections,
        concurrency: options.concurrency,
        subscribe: options.subscribe.is_some(),
        meta_subscriber: options.meta_subscriber,
        completed,
        failed,
        first_error,
        elapsed_s,
        connections_per_s: if elapsed_s > 0.0 {
            completed as f64 / elapsed_s
        } else {
            0.0
        },
        session_time: Latency::from_ns(&mut times),
        meta_expected,
        meta_on_join,
        meta_on_leave,
        gateway_cpu_s,
    })
}

/// Adds one finished session to the counts.
fn tally(
    joined: Result<(anyhow::Result<()>, Duration), tokio::task::JoinError>,
    completed: &mut usize,
    failed: &mut usize,
    first_error: &mut Option<String>,
    times: &mut Vec<u64>,
) {
    match joined {
        Ok((Ok(()), took)) => {
            *completed += 1;
            times.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
        Ok((Err(error), _)) => {
            *failed += 1;
            first_error.get_or_insert(format!("{error:#}"));
        }
        Err(error) => {
            *failed += 1;
            first_error.get_or_insert(error.to_string());
        }
    }
}

//! Live data: how fast a session recovers a topic's history (`wamp.subscription.get_events`), and what a
//! stored event costs the gateway in resident memory. Both need a gateway config that keeps history for
//! the topics used (`[[realms.history]]`).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{publisher_buffers, Connection, Target};
use crate::idle::settled_rss;
use crate::publisher::{self, wait_published};
use crate::report::{table, Latency};
use crate::sys::vm_rss_kib;
use crate::wire::{code, EventPayload, Serializer};

/// The recovery procedure.
pub const GET_EVENTS: &str = "wamp.subscription.get_events";
/// Most events a get_events answer holds (the gateway's cap per call).
const MOST_PER_CALL: u64 = 10_000;

/// Settings of a recovery run.
#[derive(Debug, Clone)]
pub struct RecoveryOptions {
    /// Gateway WebSocket URL.
    pub url: String,
    /// Serializer of both connections.
    pub serializer: Serializer,
    /// EVENT frame size in bytes.
    pub size: usize,
    /// The topic (its history must keep `events` events).
    pub topic: String,
    /// Events published before the calls.
    pub events: u64,
    /// get_events calls timed, one after another.
    pub calls: usize,
    /// Ask `after_publication=<first event>` (`events - 1` back) instead of `limit=events`.
    pub after_first: bool,
    /// How long the subscriber may wait for the published events.
    pub timeout: Duration,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        RecoveryOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            serializer: Serializer::Json,
            size: 200,
            topic: "com.switchboard.bench".into(),
            events: 1000,
            calls: 200,
            after_first: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a recovery run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// Serializer used.
    pub serializer: Serializer,
    /// Events published.
    pub events: u64,
    /// Requested EVENT frame size in bytes.
    pub size: usize,
    /// `limit` (limit=events) or `after_first` (after_publication=<first event>).
    pub query: String,
    /// Calls timed.
    pub calls: usize,
    /// Events in each answer.
    pub returned: usize,
    /// Bytes of a RESULT frame (the largest seen).
    pub answer_bytes: usize,
    /// From sending the CALL to having read the whole RESULT frame.
    pub latency: Option<Latency>,
    /// The same, plus decoding the RESULT into a JSON value in the generator.
    pub latency_decoded: Option<Latency>,
}

impl RecoveryReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("scenario", "recovery".to_string()),
            (
                "serializer",
                format!("{:?}", self.serializer).to_lowercase(),
            ),
            ("events published", self.events.to_string()),
            ("event size (bytes)", self.size.to_string()),
            ("query", self.query.clone()),
            ("calls", self.calls.to_string()),
            ("events per answer", self.returned.to_string()),
            ("bytes per answer", self.answer_bytes.to_string()),
        ];
        if let Some(l) = &self.latency {
            rows.extend([
                ("get_events p50 (ms)", format!("{:.3}", l.p50_us / 1000.0)),
                ("get_events p99 (ms)", format!("{:.3}", l.p99_us / 1000.0)),
                ("get_events max (ms)", format!("{:.3}", l.max_us / 1000.0)),
            ]);
        }
        if let Some(l) = &self.latency_decoded {
            rows.extend([
                ("decoded p50 (ms)", format!("{:.3}", l.p50_us / 1000.0)),
                ("decoded p99 (ms)", format!("{:.3}", l.p99_us / 1000.0)),
            ]);
        }
        table(&rows)
    }
}

/// Subscribes, has a second session publish `events` events, reads them, then times `calls` get_events
/// calls one after another. Fails if an answer does not hold the expected events.
pub async fn run(options: &RecoveryOptions) -> anyhow::Result<RecoveryReport> {
    if options.events < 2 || options.events > MOST_PER_CALL || options.calls == 0 {
        bail!("events must be 2 to {MOST_PER_CALL} and calls at least 1");
    }
    crate::clock::init();
    let target = Target::parse(&options.url)?;
    let mut session =
        Connection::connect(&target, options.serializer, None, publisher_buffers()).await?;
    session.join().await?;
    let subscription = session.subscribe(&options.topic).await?;

    let payload = EventPayload::new(&options.topic, options.size, options.serializer);
    publisher::run(&target, options.serializer, &payload, options.events, None)
        .await
        .context("publishing the events")?;
    let first = first_publication(&mut session, options.events, options.timeout).await?;

    let (query, kwargs, expected) = match options.after_first {
        true => (
            "after_first",
            json!({ "after_publication": first }),
            options.events - 1,
        ),
        false => ("limit", json!({ "limit": options.events }), options.events),
    };
    let mut latencies = Vec::with_capacity(options.calls);
    let mut decoded = Vec::with_capacity(options.calls);
    let mut answer_bytes = 0;
    for _ in 0..options.calls {
        let started = Instant::now();
        let (result, bytes, received) = session
            .call(GET_EVENTS, json!([subscription]), kwargs.clone())
            .await?;
        latencies.push(received.duration_since(started).as_nanos() as u64);
        decoded.push(started.elapsed().as_nanos() as u64);
        answer_bytes = answer_bytes.max(bytes);
        let events = result
            .get(3)
            .and_then(|args| args.get(0))
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("RESULT without a list of events: {result}"))?;
        if events.len() as u64 != expected {
            bail!(
                "get_events answered {} events, expected {expected} (does the gateway keep history \
                 for {} with a limit of at least {}? was it fresh?)",
                events.len(),
                options.topic,
                options.events
            );
        }
    }
    session.close().await;
    Ok(RecoveryReport {
        serializer: options.serializer,
        events: options.events,
        size: options.size,
        query: query.into(),
        calls: options.calls,
        returned: expected as usize,
        answer_bytes,
        latency: Latency::from_ns(&mut latencies),
        latency_decoded: Latency::from_ns(&mut decoded),
    })
}

/// Reads `events` EVENTs and returns the publication id of the first one.
async fn first_publication(
    session: &mut Connection,
    events: u64,
    timeout: Duration,
) -> anyhow::Result<u64> {
    let read = async {
        let mut first = None;
        for _ in 0..events {
            let message = session.recv().await?;
            if message.get(0).and_then(Value::as_u64) != Some(code::EVENT) {
                bail!("expected EVENT, got {message}");
            }
            if first.is_none() {
                first = message.get(2).and_then(Value::as_u64);
            }
        }
        first.ok_or_else(|| anyhow!("the first EVENT had no publication id"))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| anyhow!("the {events} events did not all arrive"))?
}

/// Settings of a memory-per-stored-event run.
#[derive(Debug, Clone)]
pub struct HistoryMemoryOptions {
    /// Gateway WebSocket URL.
    pub url: String,
    /// The gateway's process id.
    pub pid: u32,
    /// Events published.
    pub events: u64,
    /// Topics `TOPIC.0` .. `TOPIC.(topics-1)`, published to round robin.
    pub topics: usize,
    /// EVENT frame size in bytes.
    pub size: usize,
    /// Topic prefix.
    pub topic: String,
    /// Serializer.
    pub serializer: Serializer,
    /// How long the gateway's RSS may take to settle, before and after.
    pub settle_timeout: Duration,
}

impl Default for HistoryMemoryOptions {
    fn default() -> Self {
        HistoryMemoryOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            pid: 0,
            events: 100_000,
            topics: 100,
            size: 200,
            topic: "com.switchboard.bench.history".into(),
            serializer: Serializer::Json,
            settle_timeout: Duration::from_secs(20),
        }
    }
}

/// What a memory-per-stored-event run measured.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryMemoryReport {
    /// Gateway process id.
    pub pid: u32,
    /// Events published.
    pub events: u64,
    /// Topics they went to.
    pub topics: usize,
    /// Requested EVENT frame size in bytes.
    pub size: usize,
    /// Seconds to publish them all (until the last PUBLISHED).
    pub publish_s: f64,
    /// Gateway VmRSS before publishing (publisher connected), in KiB.
    pub rss_before_kib: u64,
    /// Gateway VmRSS after, once settled, in KiB.
    pub rss_after_kib: u64,
    /// Whether both readings settled before the deadline.
    pub settled: bool,
    /// Events get_events returned for the first topic afterwards (events / topics when the history keeps
    /// everything; 0 when the gateway keeps no history for the topics).
    pub stored_first_topic: usize,
    /// (after - before) / events, in bytes.
    pub bytes_per_event: f64,
}

impl HistoryMemoryReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        table(&[
            ("scenario", "history-memory".into()),
            ("gateway pid", self.pid.to_string()),
            ("events", self.events.to_string()),
            ("topics", self.topics.to_string()),
            ("event size (bytes)", self.size.to_string()),
            ("publish (s)", format!("{:.2}", self.publish_s)),
            ("RSS before (KiB)", self.rss_before_kib.to_string()),
            ("RSS after (KiB)", self.rss_after_kib.to_string()),
            ("settled", self.settled.to_string()),
            (
                "stored on the first topic",
                self.stored_first_topic.to_string(),
            ),
            (
                "RSS per stored event",
                format!("{:.0} bytes", self.bytes_per_event),
            ),
        ])
    }
}

/// Publishes `events` events round robin over `topics` topics and reports the gateway's RSS growth per
/// event; then checks with get_events how many the first topic kept.
pub async fn history_memory(options: &HistoryMemoryOptions) -> anyhow::Result<HistoryMemoryReport> {
    if options.events == 0 || options.topics == 0 {
        bail!("events and topics must be at least 1");
    }
    crate::clock::init();
    let target = Target::parse(&options.url)?;
    let pid = options.pid;
    vm_rss_kib(pid).with_context(|| format!("is {pid} the gateway's process id?"))?;
    let mut publisher =
        Connection::connect(&target, options.serializer, None, publisher_buffers()).await?;
    publisher.join().await?;
    let (rss_before_kib, settled_before) = settled_rss(pid, options.settle_timeout).await?;

    let payloads: Vec<EventPayload> = (0..options.topics)
        .map(|t| {
            let topic = format!("{}.{t}", options.topic);
            EventPayload::new(&topic, options.size, options.serializer)
        })
        .collect();
    let started = Instant::now();
    for sequence in 1..=options.events {
        let payload = &payloads[(sequence - 1) as usize % options.topics];
        let last = sequence == options.events;
        publisher.feed(&payload.publish(sequence, last)).await?;
        if sequence % 64 == 0 || last {
            publisher.flush().await?;
        }
    }
    wait_published(&mut publisher, options.events).await?;
    let publish_s = started.elapsed().as_secs_f64();
    let (rss_after_kib, settled_after) = settled_rss(pid, options.settle_timeout).await?;

    let subscription = publisher.subscribe(&format!("{}.0", options.topic)).await?;
    let limit = options
        .events
        .div_ceil(options.topics as u64)
        .min(MOST_PER_CALL);
    // A gateway keeping no history for the topics (a control run) answers no_history: nothing stored.
    let answer = publisher
        .call(GET_EVENTS, json!([subscription]), json!({ "limit": limit }))
        .await;
    let stored_first_topic = answer.ok().map_or(0, |(result, _, _)| {
        result
            .get(3)
            .and_then(|args| args.get(0))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    });
    publisher.close().await;
    let delta_bytes = rss_after_kib.saturating_sub(rss_before_kib) as f64 * 1024.0;
    Ok(HistoryMemoryReport {
        pid,
        events: options.events,
        topics: options.topics,
        size: options.size,
        publish_s,
        rss_before_kib,
        rss_after_kib,
        settled: settled_before && settled_after,
        stored_first_topic,
        bytes_per_event: delta_bytes / options.events as f64,
    })
}

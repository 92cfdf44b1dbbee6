//! Fan-out: N subscribers on one topic, one publisher sending E events; counts deliveries and losses and
//! samples publish-to-delivery latency. The `latency` and `smoke` scenarios are the same run with other
//! settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{self, source_address, Connection, Target};
use crate::report::{FlowReport, Latency};
use crate::subscriber::{self, Held, Outcome};
use crate::wire::{EventPayload, Serializer, Transport};
use crate::{publisher, sys};

/// Settings of a fan-out run.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Gateway WebSocket URL (`ws://127.0.0.x:PORT/ws`): the subscribers', and the publisher's unless
    /// `publish_url` is set.
    pub url: String,
    /// Further subscriber URLs (other nodes of a cluster): subscriber `i` connects to
    /// `[url, spread_urls...][i % (1 + spread_urls.len())]`.
    pub spread_urls: Vec<String>,
    /// The publisher's URL when it is not `url` (e.g. node 1 of a cluster, subscribers on nodes 2 and 3).
    pub publish_url: Option<String>,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Events to publish.
    pub events: u64,
    /// EVENT frame size in bytes.
    pub size: usize,
    /// Serializer for every connection.
    pub serializer: Serializer,
    /// Transport of every connection, the publisher's included.
    pub transport: Transport,
    /// The gateway's process id: its CPU time from the publisher's start to the last delivery is reported.
    pub pid: Option<u32>,
    /// Events per second, or as fast as possible when `None`.
    pub rate: Option<f64>,
    /// Every K-th subscriber (and the first) measures latency.
    pub sample_every: usize,
    /// The topic.
    pub topic: String,
    /// How long deliveries may take, from the first publish.
    pub timeout: Duration,
    /// How long opening every subscriber may take.
    pub connect_timeout: Duration,
    /// Connections being opened at once.
    pub connect_concurrency: usize,
    /// Connections per source address before moving on to the next 127.0.0.x.
    pub per_source: usize,
    /// Subscribe with this pattern (`(policy, pattern)`, e.g. `("prefix", "com.")`) instead of the
    /// exact topic: measures pattern matching and per-event authorization on delivery.
    pub pattern: Option<(String, String)>,
    /// Distinct server-side filters (`_filter`): subscriber `i` subscribes with filter `i % filters`,
    /// and every filter admits every event; 0: no filter.
    pub filters: usize,
    /// Publish kwargs `{"n": sequence}` with every event (implied by `filters`), so that a run without
    /// filters carries the same payload as one with them.
    pub kwargs: bool,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        FanoutOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            spread_urls: Vec::new(),
            publish_url: None,
            subscribers: 1000,
            events: 1000,
            size: 200,
            serializer: Serializer::Json,
            transport: Transport::Websocket,
            pid: None,
            rate: None,
            sample_every: 100,
            topic: "com.switchboard.bench".into(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(60),
            connect_concurrency: 256,
            per_source: 20_000,
            pattern: None,
            filters: 0,
            kwargs: false,
        }
    }
}

/// Server-side filter number `k`: `{"n": {"$gte": -k}}`, distinct for every `k` and true for every
/// benchmark event (whose `n` is its sequence number, from 1).
pub fn filter(k: usize) -> Value {
    json!({ "n": { "$gte": -(k as i64) } })
}

/// Runs a fan-out and reports it.
pub async fn run(options: &FanoutOptions) -> anyhow::Result<FlowReport> {
    flow("fanout", options).await
}

/// Opens `count` subscribed connections, `concurrency` at a time, all within `deadline`; connection `i`
/// goes to `targets[i % targets.len()]` and subscribes to `topic(i)`: a topic, and its SUBSCRIBE.Options (`{}`: exact match, no filter). Fails if
/// any connection fails.
pub async fn connect_many(
    targets: &[Target],
    serializer: Serializer,
    count: usize,
    concurrency: usize,
    per_source: usize,
    deadline: Duration,
    topic: impl Fn(usize) -> (String, Value),
) -> anyhow::Result<Vec<Connection>> {
    if targets.is_empty() {
        bail!("no gateway URL to connect to");
    }
    sys::raise_fd_limit(count as u64 + 256);
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let open = async {
        for index in 0..count {
            let source = source_address(index, count, per_source)?;
            let permit = Arc::clone(&semaphore).acquire_owned().await?;
            let target = targets[index % targets.len()].clone();
            let (topic, options) = topic(index);
            tasks.spawn(async move {
                let result = client::subscribed(&target, serializer, source, &topic, options).await;
                drop(permit);
                (index, result)
            });
        }
        let mut slots: Vec<Option<Connection>> = (0..count).map(|_| None).collect();
        let mut failures = 0;
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, Ok(connection))) => slots[index] = Some(connection),
                Ok((index, Err(error))) => {
                    failures += 1;
                    first_error.get_or_insert(format!("connection {index}: {error:#}"));
                }
                Err(error) => {
                    failures += 1;
                    first_error.get_or_insert(error.to_string());
                }
            }
        }
        if let Some(error) = first_error {
            bail!("{failures} of {count} connections failed; first: {error}");
        }
        Ok(slots.into_iter().flatten().collect())
    };
    tokio::time::timeout(deadline, open)
        .await
        .with_context(|| {
            format!(
                "opening {count} connections took more than {} s",
                deadline.as_secs()
            )
        })?
}

/// The shared run behind `fanout`, `latency` and `smoke`.
pub(crate) async fn flow(scenario: &str, options: &FanoutOptions) -> anyhow::Result<FlowReport> {
    if options.subscribers == 0 || options.events == 0 || options.sample_every == 0 {
        bail!("subscribers, events and sample must be at least 1");
    }
    if options.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
        bail!("rate must be a positive number");
    }
    crate::clock::init();
    let targets = std::iter::once(&options.url)
        .chain(&options.spread_urls)
        .map(|url| Ok(Target::parse(url)?.over(options.transport)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let publisher_target = match &options.publish_url {
        Some(url) => Target::parse(url)?.over(options.transport),
        None => targets[0].clone(),
    };
    let started = Instant::now();
    let connections = connect_many(
        &targets,
        options.serializer,
        options.subscribers,
        options.connect_concurrency,
        options.per_source,
        options.connect_timeout,
        |index| {
            let (uri, mut subscribe) = match &options.pattern {
                Some((policy, pattern)) => (pattern.clone(), json!({ "match": policy })),
                None => (options.topic.clone(), json!({})),
            };
            if options.filters > 0 {
                subscribe["_filter"] = filter(index % options.filters);
            }
            (uri, subscribe)
        },
    )
    .await?;
    let connect_s = started.elapsed().as_secs_f64();

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut sampled = 0;
    for (index, connection) in connections.into_iter().enumerate() {
        let sample = index % options.sample_every == 0;
        sampled += usize::from(sample);
        let stopped = stopped.clone();
        tasks.spawn(subscriber::run(connection, sample, options.events, stopped));
    }
    let kwargs = options.kwargs || options.filters > 0;
    let payload =
        EventPayload::with_kwargs(&options.topic, options.size, options.serializer, kwargs);
    let (serializer, events, rate) = (options.serializer, options.events, options.rate);
    let cpu_before = options
        .pid
        .map(|pid| sys::cpu_seconds(Some(pid)))
        .transpose()?;
    let mut publisher = tokio::spawn(async move {
        publisher::run(&publisher_target, serializer, &payload, events, rate).await
    });
    let deadline = tokio::time::Instant::now() + options.timeout;

    let mut outcomes = Vec::with_capacity(options.subscribers);
    let mut held = Vec::with_capacity(options.subscribers);
    let mut published = None;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok((outcome, socket))) => {
                    outcomes.push(outcome);
                    held.push(socket);
                }
                Some(Err(error)) => outcomes.push(Outcome { error: Some(error.to_string()), ..Outcome::default() }),
                None => break,
            },
            result = &mut publisher, if published.is_none() => {
                let result = result.context("publisher task failed")?;
                let failed = result.is_err();
                published = Some(result);
                if failed {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let gateway_cpu_s = match (options.pid, cpu_before) {
        (Some(pid), Some(before)) => Some(sys::cpu_seconds(Some(pid))? - before),
        _ => None,
    };
    // Whoever is still counting stops now and reports what it has.
    let _ = stop.send(true);
    let grace = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(joined)) = tokio::time::timeout_at(grace, tasks.join_next()).await {
        if let Ok((outcome, socket)) = joined {
            outcomes.push(outcome);
            held.push(socket);
        }
    }
    tasks.abort_all();
    let published = match published {
        Some(result) => result,
        None => match tokio::time::timeout_at(grace, &mut publisher).await {
            Ok(result) => result.context("publisher task failed")?,
            Err(_) => {
                publisher.abort();
                Err(anyhow::anyhow!("publisher did not finish in time"))
            }
        },
    };
    let closing = futures_util::stream::iter(held).for_each_concurrent(256, Held::close);
    let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
    let published = published.context("publisher failed")?;
    let mut report = summarize(scenario, options, sampled, connect_s, &published, outcomes);
    report.gateway_cpu_s = gateway_cpu_s;
    Ok(report)
}

fn summarize(
    scenario: &str,
    options: &FanoutOptions,
    sampled: usize,
    connect_s: f64,
    published: &publisher::Published,
    outcomes: Vec<Outcome>,
) -> FlowReport {
    let expected = options.subscribers as u64 * published.sent;
    let delivered: u64 = outcomes.iter().map(|o| o.events).sum();
    let last_ns = outcomes.iter().map(|o| o.last_ns).max().unwrap_or(0);
    let elapsed_s = last_ns.saturating_sub(published.first_ns) as f64 / 1e9;
    let mut latencies: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.latencies.iter().copied())
        .collect();
    FlowReport {
        scenario: scenario.to_string(),
        serializer: options.serializer,
        transport: options.transport,
        subscribers: options.subscribers,
        events: published.sent,
        size: options.size,
        filters: options.filters,
        event_bytes: outcomes.iter().map(|o| o.event_bytes).max().unwrap_or(0),
        rate: options.rate,
        sampled,
        connect_s,
        publish_s: published.last_ns.saturating_sub(published.first_ns) as f64 / 1e9,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        lost_open: outcomes
            .iter()
            .filter(|o| !o.closed && o.error.is_none())
            .map(|o| published.sent.saturating_sub(o.events))
            .sum(),
        misordered: outcomes.iter().map(|o| o.misordered).sum(),
        unexpected: outcomes.iter().map(|o| o.other).sum(),
        closed_by_gateway: outcomes
            .iter()
            .filter(|o| o.closed || o.error.is_some())
            .count(),
        elapsed_s,
        deliveries_per_s: if elapsed_s > 0.0 {
            delivered as f64 / elapsed_s
        } else {
            0.0
        },
        latency: Latency::from_ns(&mut latencies),
        gateway_cpu_s: None,
    }
}

//! Idle memory: N connections joined and subscribed, then the gateway's resident memory per connection
//! from /proc/PID/status once it settles.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use crate::client::{farewell, Target};
use crate::fanout::connect_many;
use crate::report::IdleReport;
use crate::sys::vm_rss_kib;
use crate::wire::{Serializer, Transport};

/// Settings of an idle-memory run.
#[derive(Debug, Clone)]
pub struct IdleOptions {
    /// Gateway WebSocket URL.
    pub url: String,
    /// Connections to open.
    pub connections: usize,
    /// The gateway's process id.
    pub pid: u32,
    /// Each connection subscribes to its own topic instead of a shared one.
    pub distinct_topics: bool,
    /// The shared topic (or the prefix of distinct ones).
    pub topic: String,
    /// Serializer for every connection.
    pub serializer: Serializer,
    /// Transport of every connection.
    pub transport: Transport,
    /// How long to wait for the RSS to stop moving.
    pub settle_timeout: Duration,
    /// How long opening every connection may take.
    pub connect_timeout: Duration,
    /// Connections being opened at once.
    pub connect_concurrency: usize,
    /// Connections per source address.
    pub per_source: usize,
}

impl Default for IdleOptions {
    fn default() -> Self {
        IdleOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            connections: 10_000,
            pid: 0,
            distinct_topics: false,
            topic: "com.switchboard.bench.idle".into(),
            serializer: Serializer::Json,
            transport: Transport::Websocket,
            settle_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(60),
            connect_concurrency: 256,
            per_source: 20_000,
        }
    }
}

/// Polls the RSS of `pid` until four readings in a row (a second) move less than 0.2% (at least 64 KiB),
/// or `timeout` passes. Returns the last reading and whether it settled.
pub async fn settled_rss(pid: u32, timeout: Duration) -> anyhow::Result<(u64, bool)> {
    let deadline = Instant::now() + timeout;
    let mut last = vm_rss_kib(pid)?;
    let mut steady = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = vm_rss_kib(pid)?;
        let tolerance = (last / 500).max(64);
        if now.abs_diff(last) <= tolerance {
            steady += 1;
            if steady >= 4 {
                return Ok((now, true));
            }
        } else {
            steady = 0;
        }
        last = now;
    }
    Ok((last, false))
}

/// Runs the idle scenario and reports it.
pub async fn run(options: &IdleOptions) -> anyhow::Result<IdleReport> {
    let target = Target::parse(&options.url)?.over(options.transport);
    let pid = options.pid;
    vm_rss_kib(pid).with_context(|| format!("is {pid} the gateway's process id?"))?;
    let (rss_before_kib, _) = settled_rss(pid, options.settle_timeout).await?;
    let started = Instant::now();
    let topic = |index: usize| match options.distinct_topics {
        true => (format!("{}.{index}", options.topic), serde_json::json!({})),
        false => (options.topic.clone(), serde_json::json!({})),
    };
    let connections = connect_many(
        std::slice::from_ref(&target),
        options.serializer,
        options.connections,
        options.connect_concurrency,
        options.per_source,
        options.connect_timeout,
        topic,
    )
    .await?;
    let connect_s = started.elapsed().as_secs_f64();
    // Keep only the sockets, so the generator holds no WebSocket buffers.
    let mut streams: Vec<_> = connections.into_iter().map(|c| c.into_raw()).collect();
    let (rss_after_kib, settled) = settled_rss(pid, options.settle_timeout).await?;
    let farewell = farewell(options.transport, options.serializer);
    let closing = async {
        for stream in &mut streams {
            let _ = stream.write_all(&farewell).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
    drop(streams);
    let (rss_closed_kib, _) = settled_rss(pid, Duration::from_secs(5)).await?;
    let delta_bytes = rss_after_kib.saturating_sub(rss_before_kib) as f64 * 1024.0;
    Ok(IdleReport {
        pid,
        connections: options.connections,
        transport: options.transport,
        distinct_topics: options.distinct_topics,
        connect_s,
        rss_before_kib,
        rss_after_kib,
        settled,
        rss_closed_kib,
        bytes_per_connection: delta_bytes / options.connections.max(1) as f64,
    })
}

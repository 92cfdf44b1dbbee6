//! Soak: for a fixed time, continuous publishing to steady subscribers while other clients connect and
//! leave (churn) and some subscribe and then stop reading (stalled consumers), sampling the gateway's
//! resident memory and open descriptors every few seconds. Answers "does memory stay flat under
//! everyday abuse?" by comparing the first and last third of the run.
//!
//! Every loop ends at the run's deadline and every network step has a timeout, so a run never outlives
//! `duration` by more than a few seconds; the connections held at once are bounded by the options.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::client::{publisher_buffers, small_buffers, subscribed, Connection, Target};
use crate::soak_report::{Sample, SoakReport};
use crate::sys::{open_fds, raise_fd_limit, vm_rss_kib};
use crate::wire::{EventPayload, Serializer};

/// The most connections a soak may hold at once: below the 20,000 open files the gateway and the
/// generator may each have, with room for the gateway's own descriptors.
pub const MAX_CONNECTIONS: usize = 19_000;

/// Settings of a soak run.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Gateway WebSocket URL.
    pub url: String,
    /// The gateway's process id (its /proc/PID is read).
    pub pid: u32,
    /// How long to run.
    pub duration: Duration,
    /// Time between two samples of the gateway's memory.
    pub sample_interval: Duration,
    /// Events published per second.
    pub rate: f64,
    /// EVENT frame size in bytes.
    pub size: usize,
    /// Serializer for every connection.
    pub serializer: Serializer,
    /// The topic everyone subscribes to.
    pub topic: String,
    /// Subscribers that stay connected and read everything.
    pub subscribers: usize,
    /// Subscribers that stop reading after SUBSCRIBED, each replaced by a new one every `stall_hold`.
    pub stalled: usize,
    /// How long a stalled consumer stays before it is replaced. Long enough for the gateway to notice:
    /// kernel and gateway buffers take megabytes before its outbox is full (at 200 events/s of 200 bytes
    /// the gateway closed a stalled consumer after about 95 s on the benchmark machine).
    pub stall_hold: Duration,
    /// Clients that connect, subscribe, read for `churn_hold`, leave and start again.
    pub churners: usize,
    /// How long a churning client stays connected.
    pub churn_hold: Duration,
    /// Largest RSS growth from the first to the last third still called flat, in percent.
    pub flat_tolerance_pct: f64,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            pid: 0,
            duration: Duration::from_secs(600),
            sample_interval: Duration::from_secs(5),
            rate: 200.0,
            size: 200,
            serializer: Serializer::Json,
            topic: "com.switchboard.bench.soak".into(),
            subscribers: 100,
            stalled: 20,
            stall_hold: Duration::from_secs(150),
            churners: 8,
            churn_hold: Duration::from_millis(1000),
            flat_tolerance_pct: 10.0,
        }
    }
}

/// What the clients did, counted across tasks.
#[derive(Debug, Default)]
pub struct Counters {
    /// PUBLISH messages sent.
    pub published: AtomicU64,
    /// Times the publisher lost its connection and reconnected.
    pub publisher_reconnects: AtomicU64,
    /// EVENT frames steady subscribers received.
    pub delivered: AtomicU64,
    /// Times a steady subscriber lost its connection.
    pub subscriber_drops: AtomicU64,
    /// Completed connect-subscribe-read-leave cycles of the churning clients.
    pub churn_cycles: AtomicU64,
    /// Churn cycles that failed to connect, join or subscribe.
    pub churn_failures: AtomicU64,
    /// Why the first churn cycle that failed did, for the report.
    pub first_churn_error: std::sync::Mutex<Option<String>>,
    /// Stalled consumers opened.
    pub stalled_opened: AtomicU64,
    /// Stalled consumers the gateway had closed by the time they were replaced.
    pub stalled_closed: AtomicU64,
    /// Stalled consumers that failed to connect, join or subscribe.
    pub stalled_failures: AtomicU64,
}

/// Pause after a failed step before trying again, so a broken gateway is not hammered.
const RETRY: Duration = Duration::from_secs(1);

/// Runs the soak scenario and reports it.
pub async fn run(options: &SoakOptions) -> anyhow::Result<SoakReport> {
    let target = Target::parse(&options.url)?;
    let pid = options.pid;
    vm_rss_kib(pid).with_context(|| format!("is {pid} the gateway's process id?"))?;
    let held = options.subscribers + options.stalled + options.churners + 1;
    if held > MAX_CONNECTIONS {
        bail!("{held} connections at once is more than the {MAX_CONNECTIONS} a soak may hold");
    }
    if !options.rate.is_finite() || options.rate <= 0.0 || options.sample_interval.is_zero() {
        bail!("the publish rate and the sample interval must be positive");
    }
    raise_fd_limit(held as u64 + 256);
    let started = Instant::now();
    let deadline = started + options.duration;
    let counters = Arc::new(Counters::default());
    let payload = EventPayload::new(&options.topic, options.size, options.serializer);
    let mut tasks = JoinSet::new();
    for _ in 0..options.subscribers {
        let (target, options, counters) = (target.clone(), options.clone(), counters.clone());
        tasks.spawn(async move { steady(&target, &options, deadline, &counters).await });
    }
    for index in 0..options.churners {
        let (target, options, counters) = (target.clone(), options.clone(), counters.clone());
        tasks.spawn(async move { churn(index, &target, &options, deadline, &counters).await });
    }
    for index in 0..options.stalled {
        let (target, options, counters) = (target.clone(), options.clone(), counters.clone());
        // Staggered, so that stalled consumers come and go all through the run rather than in waves.
        let start = started
            + options
                .stall_hold
                .mul_f64(index as f64 / options.stalled as f64);
        tasks.spawn(async move {
            tokio::time::sleep_until(start.min(deadline).into()).await;
            stall(&target, &options, deadline, &counters).await
        });
    }
    {
        let (target, options, counters) = (target.clone(), options.clone(), counters.clone());
        tasks.spawn(async move { publish(&target, &options, &payload, deadline, &counters).await });
    }
    let samples = sample(pid, started, deadline, options.sample_interval).await;
    // Every task ends at the deadline give or take one step timeout; whatever is left is aborted.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(SoakReport::new(
        options,
        started.elapsed(),
        samples,
        &counters,
    ))
}

/// Samples the gateway's RSS and open descriptors every `interval` until `deadline`.
async fn sample(pid: u32, started: Instant, deadline: Instant, interval: Duration) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = Instant::now();
    while next <= deadline {
        tokio::time::sleep_until(next.into()).await;
        match vm_rss_kib(pid) {
            Ok(rss_kib) => samples.push(Sample {
                t_s: started.elapsed().as_secs_f64(),
                rss_kib,
                fds: open_fds(pid).ok(),
            }),
            // The gateway is gone: nothing more to sample.
            Err(_) => break,
        }
        next += interval;
    }
    samples
}

/// One publisher at `options.rate`, reconnecting if the gateway drops it.
async fn publish(
    target: &Target,
    options: &SoakOptions,
    payload: &EventPayload,
    deadline: Instant,
    counters: &Counters,
) {
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        let joined = async {
            let mut connection =
                Connection::connect(target, options.serializer, None, publisher_buffers()).await?;
            connection.join().await?;
            anyhow::Ok(connection)
        };
        let Ok(Ok(connection)) = timeout_at(deadline.into(), joined).await else {
            counters.publisher_reconnects.fetch_add(1, Relaxed);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let Some(websocket) = connection.into_websocket() else {
            break;
        };
        let (mut sink, mut stream) = websocket.split();
        // Nothing is expected back (no acknowledge), but reading answers pings and notices a close.
        let reader = tokio::spawn(async move {
            while let Ok(Some(Ok(_))) = timeout_at(deadline.into(), stream.next()).await {}
        });
        let since = Instant::now();
        let sent_before = sequence;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        // Ends with true when the connection broke before the deadline.
        let failed = loop {
            if timeout_at(deadline.into(), tick.tick()).await.is_err() || reader.is_finished() {
                break reader.is_finished() && Instant::now() < deadline;
            }
            let due = sent_before + (since.elapsed().as_secs_f64() * options.rate) as u64;
            let mut broken = false;
            while sequence < due && !broken {
                sequence += 1;
                let frame = options.serializer.encode(&payload.publish(sequence, false));
                broken = sink.feed(frame).await.is_err();
                counters.published.fetch_add(u64::from(!broken), Relaxed);
            }
            match timeout_at(deadline.into(), sink.flush()).await {
                Ok(Ok(())) if !broken => {}
                Ok(_) => break true,
                Err(_) => break false,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        reader.abort();
        if failed {
            counters.publisher_reconnects.fetch_add(1, Relaxed);
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Reads data frames from `ws` until `until`; returns how many arrived and whether the connection
/// ended (closed by the gateway or broken) before then.
async fn read_until(connection: &mut Connection, until: Instant) -> (u64, bool) {
    let mut frames = 0;
    loop {
        match timeout_at(until.into(), connection.next_data()).await {
            Err(_) => return (frames, false),
            Ok(Ok(Some(_))) => frames += 1,
            Ok(Ok(None) | Err(_)) => return (frames, true),
        }
    }
}

/// Runs `connecting` until the run's deadline; `None` when the run ended first, which is not a failure
/// of the gateway (a connection begun just before the end cannot finish).
async fn before<T>(
    deadline: Instant,
    connecting: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Option<anyhow::Result<T>> {
    timeout_at(deadline.into(), connecting).await.ok()
}

/// A subscriber that reads everything until the deadline, reconnecting if dropped.
async fn steady(target: &Target, options: &SoakOptions, deadline: Instant, counters: &Counters) {
    while Instant::now() < deadline {
        let opened = subscribed(
            target,
            options.serializer,
            None,
            &options.topic,
            serde_json::json!({}),
        );
        let Some(opened) = before(deadline, opened).await else {
            break;
        };
        let Ok(mut connection) = opened else {
            counters.subscriber_drops.fetch_add(1, Relaxed);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let (frames, ended) = read_until(&mut connection, deadline).await;
        counters.delivered.fetch_add(frames, Relaxed);
        if ended {
            counters.subscriber_drops.fetch_add(1, Relaxed);
        } else {
            connection.close().await;
        }
    }
}

/// A client that connects, subscribes, reads for `churn_hold` and leaves, over and over; every other
/// cycle it leaves politely (WebSocket close), the others it just drops the TCP connection.
async fn churn(
    index: usize,
    target: &Target,
    options: &SoakOptions,
    deadline: Instant,
    counters: &Counters,
) {
    let mut cycle = index;
    while Instant::now() < deadline {
        cycle += 1;
        let opened = subscribed(
            target,
            options.serializer,
            None,
            &options.topic,
            serde_json::json!({}),
        );
        let Some(opened) = before(deadline, opened).await else {
            break;
        };
        let mut connection = match opened {
            Ok(connection) => connection,
            Err(error) => {
                counters.churn_failures.fetch_add(1, Relaxed);
                counters
                    .first_churn_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| format!("{error:#}"));
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let until = (Instant::now() + options.churn_hold).min(deadline);
        read_until(&mut connection, until).await;
        if cycle.is_multiple_of(2) {
            connection.close().await;
        }
        counters.churn_cycles.fetch_add(1, Relaxed);
    }
}

/// Size of a stalled consumer's socket receive buffer. Small, so that the gateway's queue for it fills
/// within seconds (as for a client on a slow link) instead of after megabytes of kernel buffers.
const STALLED_RECV_BUFFER: u32 = 4096;

/// Opens a subscribed connection with a small receive buffer, for a consumer that will stop reading.
async fn stalled(target: &Target, options: &SoakOptions) -> anyhow::Result<Connection> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(STALLED_RECV_BUFFER)?;
    let mut connection =
        Connection::connect_socket(socket, target, options.serializer, small_buffers()).await?;
    connection.join().await?;
    connection.subscribe(&options.topic).await?;
    Ok(connection)
}

/// A consumer that subscribes and never reads again; after `stall_hold` it checks whether the gateway
/// closed it (reading what is left, for at most two seconds), then a new one takes its place.
async fn stall(target: &Target, options: &SoakOptions, deadline: Instant, counters: &Counters) {
    while Instant::now() < deadline {
        let Some(opened) = before(deadline, stalled(target, options)).await else {
            break;
        };
        let Ok(mut connection) = opened else {
            counters.stalled_failures.fetch_add(1, Relaxed);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        counters.stalled_opened.fetch_add(1, Relaxed);
        let wake = (Instant::now() + options.stall_hold).min(deadline);
        tokio::time::sleep_until(wake.into()).await;
        let (_, closed) =
            read_until(&mut connection, Instant::now() + Duration::from_secs(2)).await;
        if closed {
            counters.stalled_closed.fetch_add(1, Relaxed);
        }
    }
}

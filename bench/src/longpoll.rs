//! WAMP over HTTP long-poll (`/lp` on the gateway's HTTP port), client side, and two scenarios: fan-out
//! deliveries/s to N long-poll subscribers (the publisher on WebSocket), and the gateway's memory per idle
//! long-poll session, each keeping one `receive` pending.
//!
//! Protocol: `POST /lp/open {"protocols": [P]}` answers `{"protocol", "transport": ID}`; `POST
//! /lp/ID/send` carries one message (`wamp.2.json`) or several each followed by 0x1E
//! (`wamp.2.json.batched`); `POST /lp/ID/receive` is held until messages are queued (200, same framing) or
//! the gateway's request timeout passes (204); `POST /lp/ID/close` ends the session. One keep-alive
//! HTTP/1.1 connection per session carries its requests in turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{Target, REALM, STEP_TIMEOUT};
use crate::clock::now_ns;
use crate::idle::settled_rss;
use crate::publisher;
use crate::report::table;
use crate::sys;
use crate::wire::{code, EventPayload, Serializer};

/// What ends each message of a batched JSON body.
pub const SEPARATOR: u8 = 0x1E;
/// Largest response head read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body read.
const MAX_BODY: usize = 16 << 20;

/// Where a response's head ends and how long its body is.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// HTTP status code.
    pub status: u16,
    /// Bytes of the head, the blank line included.
    pub len: usize,
    /// Content-Length (0 when absent).
    pub body: usize,
}

/// Parses a response head at the start of `bytes`; `Ok(None)` while it is incomplete. Chunked bodies are
/// refused (the gateway sends Content-Length).
pub fn parse_head(bytes: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        if bytes.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut body = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            body = value.parse().context("bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value != "identity" {
            bail!("Transfer-Encoding {value} is not supported");
        }
    }
    if body > MAX_BODY {
        bail!("response body of {body} bytes");
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        body,
    }))
}

/// The messages of a `receive` body: the whole body, or (batched) each message before a 0x1E.
pub fn split_body(body: &[u8], batched: bool) -> Vec<&[u8]> {
    match batched {
        false if body.is_empty() => Vec::new(),
        false => vec![body],
        true => body
            .split(|b| *b == SEPARATOR)
            .filter(|m| !m.is_empty())
            .collect(),
    }
}

/// One long-poll session over one keep-alive HTTP/1.1 connection.
pub struct Session {
    stream: TcpStream,
    buffer: Vec<u8>,
    host: String,
    id: String,
    batched: bool,
}

impl Session {
    /// Opens a transport on `target` speaking `wamp.2.json`, batched or not.
    pub async fn open(target: &Target, batched: bool) -> anyhow::Result<Session> {
        let stream = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(target.addr()))
            .await
            .context("TCP connect timed out")??;
        stream.set_nodelay(true)?;
        let protocol = if batched {
            "wamp.2.json.batched"
        } else {
            "wamp.2.json"
        };
        let mut session = Session {
            stream,
            buffer: Vec::with_capacity(4096),
            host: target.addr().to_string(),
            id: String::new(),
            batched,
        };
        let body = json!({ "protocols": [protocol] }).to_string();
        let (status, answer) = session.post("/lp/open", body.as_bytes()).await?;
        if status != 200 {
            bail!(
                "open answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let answer: Value = serde_json::from_slice(&answer).context("open answer is not JSON")?;
        session.id = answer["transport"]
            .as_str()
            .ok_or_else(|| anyhow!("open answer without a transport: {answer}"))?
            .to_string();
        Ok(session)
    }

    /// Writes a POST of `body` to `path` without reading the answer.
    async fn request(&mut self, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream
            .write_all(&request)
            .await
            .context("HTTP write failed")
    }

    /// Reads one response: status and body.
    async fn response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        loop {
            if let Some(head) = parse_head(&self.buffer)? {
                if self.buffer.len() >= head.len + head.body {
                    let body = self.buffer[head.len..head.len + head.body].to_vec();
                    self.buffer.drain(..head.len + head.body);
                    return Ok((head.status, body));
                }
            }
            self.buffer.reserve(8192);
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                bail!("the gateway closed the HTTP connection");
            }
        }
    }

    /// A POST and its answer.
    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        self.request(path, body).await?;
        self.response().await
    }

    /// Sends one WAMP message.
    pub async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let mut body = message.to_string().into_bytes();
        if self.batched {
            body.push(SEPARATOR);
        }
        let path = format!("/lp/{}/send", self.id);
        match self.post(&path, &body).await? {
            (200..=299, _) => Ok(()),
            (status, text) => bail!("send answered {status}: {}", String::from_utf8_lossy(&text)),
        }
    }

    /// Starts a `receive` (its answer is read by [`Session::received`]).
    pub async fn start_receive(&mut self) -> anyhow::Result<()> {
        let path = format!("/lp/{}/receive", self.id);
        self.request(&path, b"").await
    }

    /// The answer to a started `receive`: its body (empty for 204). Cancel-safe.
    pub async fn received(&mut self) -> anyhow::Result<Vec<u8>> {
        match self.response().await? {
            (200, body) => Ok(body),
            (204, _) => Ok(Vec::new()),
            (status, text) => bail!(
                "receive answered {status}: {}",
                String::from_utf8_lossy(&text)
            ),
        }
    }

    /// Receives until a message of type `wanted` arrives (within [`STEP_TIMEOUT`]).
    async fn expect(&mut self, wanted: u64) -> anyhow::Result<Value> {
        let wait = async {
            loop {
                self.start_receive().await?;
                let body = self.received().await?;
                for message in split_body(&body, self.batched) {
                    let message: Value = serde_json::from_slice(message)?;
                    if message.get(0).and_then(Value::as_u64) == Some(wanted) {
                        return anyhow::Ok(message);
                    }
                }
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, wait)
            .await
            .with_context(|| format!("no message {wanted} within {} s", STEP_TIMEOUT.as_secs()))?
    }

    /// Joins [`REALM`] and subscribes to `topic`.
    pub async fn join_and_subscribe(&mut self, topic: &str) -> anyhow::Result<()> {
        self.send(&json!([code::HELLO, REALM, {"roles": {"subscriber": {}}}]))
            .await?;
        self.expect(code::WELCOME).await?;
        self.send(&json!([code::SUBSCRIBE, 1, {}, topic])).await?;
        self.expect(code::SUBSCRIBED).await?;
        Ok(())
    }
}

/// Settings of the long-poll scenarios.
#[derive(Debug, Clone)]
pub struct LongpollOptions {
    /// Gateway WebSocket URL (its host and port; the publisher uses it).
    pub url: String,
    /// Long-poll sessions.
    pub sessions: usize,
    /// Events to publish (fan-out); 0: the idle-memory run.
    pub events: u64,
    /// EVENT size in bytes.
    pub size: usize,
    /// `wamp.2.json.batched` instead of `wamp.2.json`.
    pub batched: bool,
    /// The topic.
    pub topic: String,
    /// Sessions opened at once.
    pub concurrency: usize,
    /// How long deliveries may take from the first publish.
    pub timeout: Duration,
    /// The gateway's pid: the idle run reads its RSS; the fan-out reports its CPU time.
    pub pid: Option<u32>,
}

/// What a long-poll run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LongpollReport {
    /// `longpoll` (fan-out) or `longpoll-idle`.
    pub scenario: String,
    /// Long-poll protocol.
    pub protocol: String,
    /// Sessions.
    pub sessions: usize,
    /// Events published.
    pub events: u64,
    /// Seconds to open, join and subscribe every session.
    pub connect_s: f64,
    /// Deliveries expected.
    pub expected: u64,
    /// EVENTs received.
    pub delivered: u64,
    /// `receive` answers with at least one message.
    pub receives: u64,
    /// Seconds from the first publish to the last delivery.
    pub elapsed_s: f64,
    /// Deliveries per second over `elapsed_s`.
    pub deliveries_per_s: f64,
    /// The gateway's CPU time over the deliveries, when its pid was given.
    pub gateway_cpu_s: Option<f64>,
    /// Idle run: the gateway's RSS before and with every session open, KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// Idle run: (after - before) / sessions.
    pub bytes_per_session: Option<f64>,
}

impl LongpollReport {
    /// The report as a two-column table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("scenario", self.scenario.clone()),
            ("protocol", self.protocol.clone()),
            ("sessions", self.sessions.to_string()),
            ("connect (s)", format!("{:.2}", self.connect_s)),
        ];
        if let (Some((before, after)), Some(per)) = (self.rss_kib, self.bytes_per_session) {
            rows.push(("RSS before / open (KiB)", format!("{before} / {after}")));
            rows.push(("RSS per session", format!("{per:.0} bytes")));
        } else {
            rows.push(("events", self.events.to_string()));
            rows.push(("deliveries expected", self.expected.to_string()));
            rows.push(("delivered", self.delivered.to_string()));
            rows.push(("receive answers", self.receives.to_string()));
            rows.push(("elapsed (s)", format!("{:.3}", self.elapsed_s)));
            rows.push(("deliveries/s", format!("{:.0}", self.deliveries_per_s)));
            if let Some(cpu) = self.gateway_cpu_s {
                rows.push(("gateway CPU (s)", format!("{cpu:.2}")));
            }
        }
        table(&rows)
    }
}

/// What one session's receive loop saw: EVENTs, non-empty answers, clock at the last EVENT.
type Seen = (u64, u64, u64);

/// Receives until `expected` EVENTs arrived (`u64::MAX`: until `stop`), re-polling after each answer.
async fn receive_loop(
    mut session: Session,
    expected: u64,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let (mut events, mut receives, mut last_ns) = (0, 0, 0);
    while events < expected && !*stop.borrow() {
        session.start_receive().await?;
        let body = tokio::select! {
            body = session.received() => body?,
            _ = stop.changed() => break,
        };
        let messages = split_body(&body, session.batched);
        receives += u64::from(!messages.is_empty());
        let before = events;
        events += messages.iter().filter(|m| m.starts_with(b"[36,")).count() as u64;
        if events != before {
            last_ns = now_ns();
        }
    }
    Ok((events, receives, last_ns))
}

/// Opens `options.sessions` joined and subscribed sessions, `concurrency` at a time.
async fn open_all(target: &Target, options: &LongpollOptions) -> anyhow::Result<Vec<Session>> {
    sys::raise_fd_limit(options.sessions as u64 + 256);
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for _ in 0..options.sessions {
        let permit = Arc::clone(&semaphore).acquire_owned().await?;
        let (target, topic, batched) = (target.clone(), options.topic.clone(), options.batched);
        tasks.spawn(async move {
            let mut session = Session::open(&target, batched).await?;
            session.join_and_subscribe(&topic).await?;
            drop(permit);
            anyhow::Ok(session)
        });
    }
    let mut sessions = Vec::with_capacity(options.sessions);
    while let Some(joined) = tasks.join_next().await {
        sessions.push(joined??);
    }
    Ok(sessions)
}

/// Runs the long-poll fan-out (`events > 0`) or the idle-memory run (`events == 0`, `pid` needed).
pub async fn run(options: &LongpollOptions) -> anyhow::Result<LongpollReport> {
    if options.sessions == 0 || options.sessions > 15_000 {
        bail!("sessions must be 1 to 15,000 (one descriptor each)");
    }
    crate::clock::init();
    let target = Target::parse(&options.url)?;
    let idle = options.events == 0;
    let rss_before = match (idle, options.pid) {
        (true, Some(pid)) => Some(settled_rss(pid, Duration::from_secs(15)).await?.0),
        (true, None) => bail!("the idle run needs the gateway's --pid"),
        _ => None,
    };
    let started = Instant::now();
    let sessions = open_all(&target, options).await?;
    let connect_s = started.elapsed().as_secs_f64();
    let (stop, stopped) = watch::channel(false);
    let expected_each = if idle { u64::MAX } else { options.events };
    let mut loops = JoinSet::new();
    for session in sessions {
        loops.spawn(receive_loop(session, expected_each, stopped.clone()));
    }
    let mut report = LongpollReport {
        scenario: if idle { "longpoll-idle" } else { "longpoll" }.into(),
        protocol: if options.batched {
            "wamp.2.json.batched"
        } else {
            "wamp.2.json"
        }
        .into(),
        sessions: options.sessions,
        events: options.events,
        connect_s,
        expected: options.sessions as u64 * options.events,
        delivered: 0,
        receives: 0,
        elapsed_s: 0.0,
        deliveries_per_s: 0.0,
        gateway_cpu_s: None,
        rss_kib: None,
        bytes_per_session: None,
    };
    if let (true, Some(pid), Some(before)) = (idle, options.pid, rss_before) {
        let (after, _) = settled_rss(pid, Duration::from_secs(15)).await?;
        report.rss_kib = Some((before, after));
        report.bytes_per_session =
            Some(after.saturating_sub(before) as f64 * 1024.0 / options.sessions as f64);
    } else {
        let cpu_before = options
            .pid
            .map(|pid| sys::cpu_seconds(Some(pid)))
            .transpose()?;
        let payload = EventPayload::new(&options.topic, options.size, Serializer::Json);
        let events = options.events;
        let published = tokio::time::timeout(
            options.timeout,
            publisher::run(&target, Serializer::Json, &payload, events, None),
        )
        .await
        .context("publisher timed out")??;
        let deadline = tokio::time::Instant::now() + options.timeout;
        let mut last_ns = 0;
        let mut tally = |seen: Seen| {
            report.delivered += seen.0;
            report.receives += seen.1;
            last_ns = last_ns.max(seen.2);
        };
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, loops.join_next()).await {
            tally(joined??);
        }
        if let (Some(pid), Some(before)) = (options.pid, cpu_before) {
            report.gateway_cpu_s = Some(sys::cpu_seconds(Some(pid))? - before);
        }
        // Loops still waiting at the deadline stop and report what they have.
        let _ = stop.send(true);
        let grace = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(Ok(seen)))) = tokio::time::timeout_at(grace, loops.join_next()).await {
            tally(seen);
        }
        report.elapsed_s = last_ns.saturating_sub(published.first_ns) as f64 / 1e9;
        if report.elapsed_s > 0.0 {
            report.deliveries_per_s = report.delivered as f64 / report.elapsed_s;
        }
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while loops.join_next().await.is_some() {}
    })
    .await;
    loops.abort_all();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_bodies() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        let head = parse_head(ok).unwrap().unwrap();
        assert_eq!((head.status, head.body), (200, 5));
        assert_eq!(&ok[head.len..], b"hello");
        let empty = b"HTTP/1.1 204 No Content\r\ncache-control: no-store\r\n\r\n";
        assert_eq!(parse_head(empty).unwrap().unwrap().body, 0);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn batched_bodies_split_at_the_separator() {
        let body = b"[36,1,2,{},[1]]\x1e[36,1,3,{},[2]]\x1e";
        assert_eq!(
            split_body(body, true),
            vec![&b"[36,1,2,{},[1]]"[..], &b"[36,1,3,{},[2]]"[..]]
        );
        assert_eq!(split_body(b"[36,1]", false), vec![&b"[36,1]"[..]]);
        assert!(split_body(b"", false).is_empty());
        assert!(split_body(b"", true).is_empty());
    }
}

//! ZeroMQ ingestion: a PULL endpoint bound at `[ingest.zmq].endpoint` (`tcp://HOST:PORT`); each message
//! is two frames, `[signature, event-json]` (DESIGN.md section 5). Fire-and-forget for the sender, so
//! refusals can only be logged (rate-limited per peer and reason) and counted.
//!
//! The listening side is our own bounded ZMTP receiver ([`zmtp`]); what one peer can cost is:
//! one connection holds at most a signature frame ([`MAX_SIGNATURE_BYTES`]) plus one event frame
//! (`[gateway] max_message_bytes`) plus a 64 KiB read buffer; at most [`MAX_CONNECTIONS`] connections
//! are served at once (past that a newcomer displaces the oldest connection that never sent a signed
//! message, see [`slots`], or is closed on accept). A frame declaring more than `max_message_bytes`
//! closes its connection before anything is allocated for it; messages of any other shape than two
//! frames, however many MORE frames they carry, are dropped frame by frame as they arrive.

mod slots;
pub mod zmtp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_config::ZmqConfig;
use switchboard_wire::Verifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::publish::{PublishError, Publisher};
use super::signed::{ingest, Refusal};
use super::IngestError;
use crate::throttle;
use zmtp::{Limits, Received, Zmtp, ZmtpError};

/// Largest signature frame kept (`t=<unix>,n=<nonce of at most 128>,s=<64 hex>` is under 220 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 512;
/// Most connections served at once; each can hold about one event's worth of memory.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a new connection may take to greet and send READY.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts of what the ZeroMQ endpoint refused, for the log (the metrics count by reason).
#[derive(Debug, Default)]
struct ZmqStats {
    /// Messages refused (wrong frame count, bad signature, bad event, oversized frame).
    rejected: AtomicU64,
}

/// What every connection of one endpoint shares.
struct Shared {
    publisher: Publisher,
    verifier: Arc<Verifier>,
    stats: Arc<ZmqStats>,
    limits: Limits,
}

/// The running ZeroMQ PULL endpoint.
pub struct ZmqIngest {
    endpoint: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// `tcp://HOST:PORT` as an address to bind (`*` is every interface, as in libzmq).
fn tcp_address(endpoint: &str) -> Option<String> {
    let address = endpoint.strip_prefix("tcp://")?;
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = match host {
        "*" => "0.0.0.0",
        host => host,
    };
    Some(format!("{host}:{port}"))
}

impl ZmqIngest {
    /// Binds the PULL endpoint and starts serving; frames are bounded by `max_message_bytes`.
    pub async fn start(
        config: &ZmqConfig,
        max_message_bytes: usize,
        publisher: Publisher,
        verifier: Arc<Verifier>,
    ) -> Result<Self, IngestError> {
        let bind_error = |source: std::io::Error| IngestError::Bind {
            transport: "zmq",
            address: config.endpoint.clone(),
            source,
        };
        let address = tcp_address(&config.endpoint)
            .ok_or_else(|| bind_error(std::io::Error::other("expected tcp://HOST:PORT")))?;
        let listener = TcpListener::bind(&address).await.map_err(bind_error)?;
        let endpoint = format!("tcp://{}", listener.local_addr().map_err(bind_error)?);
        tracing::info!("ZeroMQ ingestion on {endpoint} (PULL)");
        let shared = Arc::new(Shared {
            publisher,
            verifier,
            stats: Arc::default(),
            limits: Limits {
                max_signature: MAX_SIGNATURE_BYTES,
                max_frame: max_message_bytes,
            },
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept(listener, shared, stop.clone()));
        Ok(ZmqIngest {
            endpoint,
            stop,
            task,
        })
    }

    /// The endpoint actually bound.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops accepting, ends every connection (a message being read is dropped) and returns.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let slots = slots::Slots::new(MAX_CONNECTIONS);
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait a little instead of spinning.
                if let Some(suppressed) = throttle::allow("zmq_accept", "listener") {
                    tracing::warn!(%error, suppressed, "ZeroMQ accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.take().await else {
            refuse(
                &shared.stats,
                peer,
                "connections",
                "connection limit reached, closed",
            );
            continue;
        };
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = slot.evicted.cancelled() => {
                    refuse(&shared.stats, peer, "displaced", "never sent a signed message; its slot went to a newcomer");
                }
                _ = serve(stream, peer, &shared, &slot.proven) => {}
            }
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
}

/// One peer's connection: handshake, then its messages in order until it closes or misbehaves.
async fn serve(stream: TcpStream, peer: SocketAddr, shared: &Shared, proven: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, Zmtp::handshake(stream, shared.limits));
    let mut zmtp = match handshake.await {
        Ok(Ok(zmtp)) => zmtp,
        Ok(Err(error)) => return ended(&shared.stats, peer, &error),
        Err(_) => {
            let reason = "no greeting and READY within the handshake timeout";
            return refuse(&shared.stats, peer, "protocol", reason);
        }
    };
    loop {
        match zmtp.receive().await {
            Ok(Received::Message { signature, body }) => {
                if on_message(&signature, &body, peer, shared).await {
                    proven.store(true, Ordering::Relaxed);
                }
            }
            Ok(Received::Refused { which, reason }) => refuse(&shared.stats, peer, which, &reason),
            Err(error) => return ended(&shared.stats, peer, &error),
        }
    }
}

/// A connection ended: counted as a refusal unless the peer simply went away.
fn ended(stats: &ZmqStats, peer: SocketAddr, error: &ZmtpError) {
    match error {
        ZmtpError::Io(error) => tracing::debug!(%peer, %error, "ZeroMQ peer disconnected"),
        error => refuse(
            stats,
            peer,
            error.which(),
            &format!("{error}; connection closed"),
        ),
    }
}

/// Publishes one message; true when it was validly signed (the peer holds the secret). In a cluster it
/// waits for the event log's confirmation: ZeroMQ has no acknowledgement, so an event the log could not
/// take is refused like any other (counted and logged), and the peer's next message waits meanwhile.
async fn on_message(signature: &[u8], body: &[u8], peer: SocketAddr, shared: &Shared) -> bool {
    let Ok(signature) = std::str::from_utf8(signature) else {
        refuse(
            &shared.stats,
            peer,
            "malformed",
            "signature frame is not UTF-8",
        );
        return false;
    };
    match ingest(&shared.verifier, &shared.publisher, Some(signature), body).await {
        Ok(_) => {
            metrics::counter!("switchboard_ingest_accepted_total", "transport" => "zmq")
                .increment(1);
            true
        }
        Err(refusal) => {
            refuse(&shared.stats, peer, refusal.which(), &refusal.to_string());
            matches!(refusal, Refusal::Publish(PublishError::Cluster(_)))
        }
    }
}

/// Counts a refusal and logs it, at most once per peer address and reason per throttle interval.
fn refuse(stats: &ZmqStats, peer: SocketAddr, which: &'static str, reason: &str) {
    let rejected = stats.rejected.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::counter!("switchboard_ingest_refused_total", "transport" => "zmq", "reason" => which)
        .increment(1);
    let source = format!("{}/{which}", peer.ip());
    if let Some(suppressed) = throttle::allow("zmq_refused", &source) {
        tracing::warn!(which, rejected, suppressed, %peer, "ZeroMQ message refused: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_transport_and_reason() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let stats = ZmqStats::default();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        metrics::with_local_recorder(&recorder, || {
            refuse(&stats, peer, "frames", "expected 2 frames");
            refuse(&stats, peer, "frames", "expected 2 frames");
            refuse(&stats, peer, "too_large", "a frame declares 2^40 bytes");
        });
        let text = handle.render();
        assert!(
            text.contains(r#"switchboard_ingest_refused_total{transport="zmq",reason="frames"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchboard_ingest_refused_total{transport="zmq",reason="too_large"} 1"#
            ),
            "{text}"
        );
        assert_eq!(stats.rejected.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn tcp_endpoints_become_bind_addresses() {
        assert_eq!(
            tcp_address("tcp://127.0.0.1:5560").as_deref(),
            Some("127.0.0.1:5560")
        );
        assert_eq!(tcp_address("tcp://*:5560").as_deref(), Some("0.0.0.0:5560"));
        assert_eq!(tcp_address("tcp://[::1]:0").as_deref(), Some("[::1]:0"));
        assert_eq!(tcp_address("ipc:///tmp/x"), None);
        assert_eq!(tcp_address("tcp://host"), None);
    }
}

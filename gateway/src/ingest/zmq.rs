//! ZeroMQ ingestion: a PULL socket bound at `[ingest.zmq].endpoint`; each message is two frames,
//! `[signature, event-json]` (DESIGN.md section 5). Fire-and-forget for the sender, so refusals can
//! only be logged (a warning each) and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_config::ZmqConfig;
use switchboard_emitter::Verifier;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeromq::{Socket, SocketRecv, ZmqMessage};

use super::publish::Publisher;
use super::signed::ingest;
use super::IngestError;

/// Counts of what the ZeroMQ endpoint received.
#[derive(Debug, Default)]
pub struct ZmqStats {
    /// Messages published.
    pub accepted: AtomicU64,
    /// Messages refused (wrong frame count, bad signature, bad event).
    pub rejected: AtomicU64,
}

/// The running ZeroMQ PULL endpoint.
pub struct ZmqIngest {
    endpoint: String,
    stats: Arc<ZmqStats>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ZmqIngest {
    /// Binds the PULL socket and starts receiving.
    pub async fn start(
        config: &ZmqConfig,
        publisher: Publisher,
        verifier: Arc<Verifier>,
    ) -> Result<Self, IngestError> {
        let mut socket = zeromq::PullSocket::new();
        let endpoint = socket
            .bind(&config.endpoint)
            .await
            .map_err(|error| IngestError::Bind {
                transport: "zmq",
                address: config.endpoint.clone(),
                source: std::io::Error::other(error.to_string()),
            })?
            .to_string();
        tracing::info!("ZeroMQ ingestion on {endpoint} (PULL)");
        let stats = Arc::new(ZmqStats::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(receive(
            socket,
            publisher,
            verifier,
            Arc::clone(&stats),
            stop.clone(),
        ));
        Ok(ZmqIngest {
            endpoint,
            stats,
            stop,
            task,
        })
    }

    /// The endpoint actually bound.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What was accepted and refused so far.
    pub fn stats(&self) -> &ZmqStats {
        &self.stats
    }

    /// Stops receiving and closes the socket.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn receive(
    mut socket: zeromq::PullSocket,
    publisher: Publisher,
    verifier: Arc<Verifier>,
    stats: Arc<ZmqStats>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            message = socket.recv() => message,
        };
        match message {
            Ok(message) => on_message(&message, &publisher, &verifier, &stats),
            Err(error) => {
                // A peer's broken connection or bad framing; the socket itself keeps serving.
                tracing::warn!(%error, "ZeroMQ receive failed");
            }
        }
    }
    let _ = socket.close().await;
}

fn on_message(message: &ZmqMessage, publisher: &Publisher, verifier: &Verifier, stats: &ZmqStats) {
    let refuse = |which: &str, reason: String| {
        let rejected = stats.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(which, rejected, "ZeroMQ message refused: {reason}");
    };
    if message.len() != 2 {
        return refuse(
            "frames",
            format!(
                "expected 2 frames [signature, event], got {}",
                message.len()
            ),
        );
    }
    let (Some(signature), Some(body)) = (message.get(0), message.get(1)) else {
        return refuse("frames", "missing frame".to_string());
    };
    let Ok(signature) = std::str::from_utf8(signature) else {
        return refuse("malformed", "signature frame is not UTF-8".to_string());
    };
    match ingest(verifier, publisher, Some(signature), body) {
        Ok(_) => {
            stats.accepted.fetch_add(1, Ordering::Relaxed);
        }
        Err(refusal) => refuse(refusal.which(), refusal.to_string()),
    }
}

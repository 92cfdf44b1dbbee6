//! ZeroMQ PUSH: each event goes out as two frames, `[signature, event-json]`. zmq.rs reconnects SUB
//! sockets only, so this transport watches its socket's monitor and rebuilds the socket itself once
//! the gateway went away (DESIGN.md section 12). ZeroMQ has no acknowledgement: a receipt means the
//! event was handed to a connected socket, not that the gateway published it.

use std::time::Duration;

use bytes::Bytes;
use futures_channel::mpsc::{Receiver, TryRecvError};
use zeromq::{Socket, SocketEvent, SocketOptions, SocketSend, ZmqMessage};

use super::{Receipt, SendError};
use crate::event::Event;
use crate::signing::Signer;
use crate::EmitError;

/// Events taken from the buffer per round (each is its own ZeroMQ message).
pub const MAX_BATCH: usize = 256;
/// How long connecting to the gateway's PULL socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long closing waits for queued messages to be written (zmq.rs queues writes per peer and cannot
/// say when the queue is empty; libzmq calls this the linger period).
const LINGER: Duration = Duration::from_millis(200);
/// How long handing one message to the socket may take before the socket counts as broken.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

struct Connected {
    socket: zeromq::PushSocket,
    monitor: Receiver<SocketEvent>,
}

impl Connected {
    /// Drains the monitor; true once the gateway's side disconnected (or the monitor is gone).
    fn disconnected(&mut self) -> bool {
        loop {
            match self.monitor.try_recv() {
                Ok(SocketEvent::Disconnected(_)) | Err(TryRecvError::Closed) => return true,
                Ok(_) => continue,
                Err(TryRecvError::Empty) => return false,
            }
        }
    }
}

/// The ZeroMQ transport; connects lazily and again after every disconnect.
pub struct ZmqTransport {
    endpoint: String,
    signer: Signer,
    connected: Option<Connected>,
}

impl ZmqTransport {
    /// A transport to the gateway's PULL `endpoint` (e.g. `tcp://127.0.0.1:5560`), signing with `signer`.
    pub fn new(endpoint: &str, signer: Signer) -> Result<Self, EmitError> {
        if !endpoint.starts_with("tcp://") {
            return Err(EmitError::Setup {
                transport: "zmq",
                reason: format!("{endpoint}: only tcp:// endpoints are supported"),
            });
        }
        Ok(ZmqTransport {
            endpoint: endpoint.to_string(),
            signer,
            connected: None,
        })
    }

    async fn socket(&mut self) -> Result<&mut Connected, SendError> {
        if self.connected.as_mut().is_some_and(Connected::disconnected) {
            self.connected = None;
        }
        if self.connected.is_none() {
            let mut options = SocketOptions::default();
            options.connect_timeout(CONNECT_TIMEOUT);
            let mut socket = zeromq::PushSocket::with_options(options);
            let monitor = socket.monitor();
            socket.connect(&self.endpoint).await.map_err(|e| {
                SendError::Retry(format!("cannot connect to {}: {e}", self.endpoint))
            })?;
            self.connected = Some(Connected { socket, monitor });
        }
        self.connected
            .as_mut()
            .ok_or_else(|| SendError::Retry("not connected".into()))
    }

    /// Waits the linger period, then closes the socket.
    pub async fn close(self) {
        if let Some(connected) = self.connected {
            tokio::time::sleep(LINGER).await;
            let _ = connected.socket.close().await;
        }
    }

    /// Sends `events` one message each; stops at the first failure, returning the receipts of those
    /// already sent (the rest is retried) or an error when none was.
    pub async fn send(
        &mut self,
        events: &[&Event],
    ) -> Result<Vec<Result<Receipt, EmitError>>, SendError> {
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            let body = event.to_json();
            let signature = self.signer.sign(&body);
            let frames = vec![Bytes::from(signature), Bytes::from(body)];
            let message = ZmqMessage::try_from(frames).map_err(|e| {
                SendError::Fatal(EmitError::Setup {
                    transport: "zmq",
                    reason: e.to_string(),
                })
            })?;
            let failure = match self.socket().await {
                Ok(connected) => {
                    match tokio::time::timeout(SEND_TIMEOUT, connected.socket.send(message)).await {
                        Ok(Ok(())) => None,
                        Ok(Err(error)) => Some(error.to_string()),
                        Err(_) => Some(format!("send took over {} ms", SEND_TIMEOUT.as_millis())),
                    }
                }
                Err(SendError::Retry(error)) => Some(error),
                Err(fatal) => return Err(fatal),
            };
            if let Some(error) = failure {
                self.connected = None;
                if sent.is_empty() {
                    return Err(SendError::Retry(error));
                }
                return Ok(sent);
            }
            sent.push(Ok(Receipt { publication: None }));
        }
        Ok(sent)
    }
}

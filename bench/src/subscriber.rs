//! The subscriber side of a flow run: count EVENTs until the expected number arrived or the run stops.
//! Sampled subscribers decode every EVENT to measure latency and order; the others only count frames
//! on the bare TCP stream.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::client::{farewell, Connection};
use crate::clock::now_ns;
use crate::counter::FrameCounter;
use crate::wire::{event_stamp, Transport};

/// Read buffer of an unsampled subscriber.
const READ_BUFFER: usize = 8 * 1024;

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// EVENT frames received.
    pub events: u64,
    /// Other data frames received.
    pub other: u64,
    /// Whether the gateway closed the connection.
    pub closed: bool,
    /// Clock reading at the last EVENT ([`crate::clock::now_ns`]).
    pub last_ns: u64,
    /// Publish-to-delivery latencies in nanoseconds (sampled subscribers only).
    pub latencies: Vec<u64>,
    /// EVENTs whose sequence number was not the previous one plus one (sampled subscribers only).
    pub misordered: u64,
    /// Size of the last EVENT frame (sampled subscribers only).
    pub event_bytes: usize,
    /// Read error, if any.
    pub error: Option<String>,
}

/// A subscriber's socket, kept open until the whole run is over and then closed.
pub enum Held {
    /// An unsampled subscriber's bare stream, with what it sends before closing.
    Raw(TcpStream, Vec<u8>),
    /// A sampled subscriber's WebSocket.
    Ws(Box<Connection>),
}

impl Held {
    /// Sends a WebSocket close frame (RawSocket: GOODBYE) and drops the connection (bounded to a second).
    pub async fn close(self) {
        match self {
            Held::Raw(mut stream, farewell) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), stream.write_all(&farewell)).await;
            }
            Held::Ws(connection) => connection.close().await,
        }
    }
}

/// Counts EVENTs on `connection` until `expected` arrived, the gateway closed it, or `stop` turns true.
pub async fn run(
    connection: Connection,
    sampled: bool,
    expected: u64,
    stop: watch::Receiver<bool>,
) -> (Outcome, Held) {
    if sampled {
        sampled_run(connection, expected, stop).await
    } else {
        let (transport, serializer) = (connection.transport(), connection.serializer);
        counting_run(connection.into_raw(), transport, serializer, expected, stop).await
    }
}

async fn counting_run(
    mut stream: TcpStream,
    transport: Transport,
    serializer: crate::Serializer,
    expected: u64,
    mut stop: watch::Receiver<bool>,
) -> (Outcome, Held) {
    let mut outcome = Outcome::default();
    let mut counter = FrameCounter::over(transport, serializer);
    let mut buffer = vec![0u8; READ_BUFFER];
    {
        let stopped = stop.wait_for(|stop| *stop);
        tokio::pin!(stopped);
        while counter.events < expected && !counter.closed {
            tokio::select! {
                biased;
                read = stream.read(&mut buffer) => match read {
                    Ok(0) => {
                        counter.closed = true;
                    }
                    Ok(n) => {
                        let before = counter.events;
                        counter.feed(&buffer[..n]);
                        if counter.events != before {
                            outcome.last_ns = now_ns();
                        }
                    }
                    Err(error) => {
                        outcome.error = Some(error.to_string());
                        break;
                    }
                },
                _ = &mut stopped => break,
            }
        }
    }
    outcome.events = counter.events;
    outcome.other = counter.other;
    outcome.closed = counter.closed;
    (outcome, Held::Raw(stream, farewell(transport, serializer)))
}

async fn sampled_run(
    mut connection: Connection,
    expected: u64,
    mut stop: watch::Receiver<bool>,
) -> (Outcome, Held) {
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(1 << 20)),
        ..Outcome::default()
    };
    let mut last_sequence = 0u64;
    {
        let stopped = stop.wait_for(|stop| *stop);
        tokio::pin!(stopped);
        while outcome.events < expected {
            let frame = tokio::select! {
                biased;
                frame = connection.next_data() => frame,
                _ = &mut stopped => break,
            };
            let now = now_ns();
            let bytes = match frame {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    outcome.closed = true;
                    break;
                }
                Err(error) => {
                    outcome.error = Some(format!("{error:#}"));
                    break;
                }
            };
            let stamp = connection
                .serializer
                .decode(&bytes)
                .ok()
                .and_then(|message| event_stamp(&message));
            let Some((sequence, published_ns)) = stamp else {
                outcome.other += 1;
                continue;
            };
            outcome.events += 1;
            outcome.last_ns = now;
            outcome.event_bytes = bytes.len();
            outcome.latencies.push(now.saturating_sub(published_ns));
            if sequence != last_sequence + 1 {
                outcome.misordered += 1;
            }
            last_sequence = sequence;
        }
    }
    (outcome, Held::Ws(Box::new(connection)))
}

//! A session's way out: a bounded queue of encoded frames and a close signal. The router pushes into it
//! without ever waiting; the transport drains it. A peer that stops reading fills its queue and, past the
//! configured time, is closed, so one slow browser never grows the gateway's memory or stalls publishers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::wamp::{Frame, Message, Serializer};

/// Why and how a session is being closed; the transport sends the matching WAMP message, then closes the
/// socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Closing {
    /// Send ABORT with this reason URI and message (protocol violations, refused HELLO, slow consumer).
    Abort { reason: String, message: String },
    /// Send GOODBYE with this reason and wait briefly for the peer's GOODBYE (shutdown, kick).
    Goodbye { reason: String, message: String },
    /// Close the socket without a WAMP message (the session already ended cleanly).
    Silent,
}

/// What the transport receives: the frames to write and the close request to watch.
pub struct OutboxReceiver {
    /// Frames in order.
    pub frames: mpsc::Receiver<Frame>,
    /// Becomes `Some` once the session must close.
    pub closing: watch::Receiver<Option<Closing>>,
}

/// The sending side of one session's bounded outbound queue, shared by the router and the session.
#[derive(Debug)]
pub struct Outbox {
    serializer: Serializer,
    frames: mpsc::Sender<Frame>,
    closing: watch::Sender<Option<Closing>>,
    /// Milliseconds since [`epoch`] (plus one) when the queue was first found full; 0 while not full.
    full_since: AtomicU64,
    dropped: AtomicU64,
    slow_consumer_limit: Duration,
}

/// A process-wide time origin so that "full since" fits in an atomic.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

impl Outbox {
    /// A new outbox holding at most `capacity` frames; a session whose queue stays full longer than
    /// `slow_consumer_limit` is closed with `switchboard.error.slow_consumer`.
    pub fn new(
        serializer: Serializer,
        capacity: usize,
        slow_consumer_limit: Duration,
    ) -> (Self, OutboxReceiver) {
        let (frames_tx, frames_rx) = mpsc::channel(capacity.max(1));
        let (closing_tx, closing_rx) = watch::channel(None);
        let outbox = Outbox {
            serializer,
            frames: frames_tx,
            closing: closing_tx,
            full_since: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            slow_consumer_limit,
        };
        (
            outbox,
            OutboxReceiver {
                frames: frames_rx,
                closing: closing_rx,
            },
        )
    }

    /// The serializer the peer negotiated; frames pushed here must be encoded with it.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Encodes and queues a message for this peer.
    pub fn send_message(&self, message: &Message) -> bool {
        self.send(self.serializer.encode(message))
    }

    /// Queues an already encoded frame without waiting. Returns false when the frame was not queued: the
    /// session is closing, or its queue is full (the frame is dropped for this peer and counted; once the
    /// queue has been full longer than the limit, the session is closed).
    pub fn send(&self, frame: Frame) -> bool {
        match self.frames.try_send(frame) {
            Ok(()) => {
                if self.full_since.load(Ordering::Relaxed) != 0 {
                    self.full_since.store(0, Ordering::Relaxed);
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = now_ms();
                let since = match self.full_since.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => now,
                    Err(since) => since,
                };
                if Duration::from_millis(now - since) >= self.slow_consumer_limit {
                    let message = format!(
                        "outbound queue full for more than {} ms; {dropped} messages dropped",
                        self.slow_consumer_limit.as_millis()
                    );
                    if self.close(Closing::Abort {
                        reason: "switchboard.error.slow_consumer".into(),
                        message,
                    }) {
                        tracing::warn!(dropped, "closing slow consumer");
                    }
                }
                false
            }
        }
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the transport to close the session; the first request wins. Returns whether this call was
    /// the first.
    pub fn close(&self, closing: Closing) -> bool {
        self.closing.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(closing);
            true
        })
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.closing.borrow().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_then_closes_after_the_limit() {
        let (outbox, mut rx) = Outbox::new(Serializer::Json, 2, Duration::ZERO);
        let frame = Serializer::Json.encode(&Message::abort("x", "y"));
        assert!(outbox.send(frame.clone()));
        assert!(outbox.send(frame.clone()));
        assert!(!outbox.send(frame.clone()), "third frame does not fit");
        assert_eq!(outbox.dropped(), 1);
        let closing = rx.closing.borrow_and_update().clone();
        match closing {
            Some(Closing::Abort { reason, .. }) => {
                assert_eq!(reason, "switchboard.error.slow_consumer")
            }
            other => panic!("expected a slow-consumer abort, got {other:?}"),
        }
        assert!(rx.frames.try_recv().is_ok());
    }

    #[test]
    fn a_queue_that_drains_in_time_stays_open() {
        let (outbox, mut rx) = Outbox::new(Serializer::Json, 1, Duration::from_secs(60));
        let frame = Serializer::Json.encode(&Message::abort("x", "y"));
        assert!(outbox.send(frame.clone()));
        assert!(!outbox.send(frame.clone()));
        assert!(!outbox.is_closing());
        rx.frames.try_recv().expect("queued frame");
        assert!(outbox.send(frame));
        assert!(!outbox.is_closing());
    }

    #[test]
    fn the_first_close_request_wins() {
        let (outbox, rx) = Outbox::new(Serializer::Json, 1, Duration::from_secs(1));
        assert!(outbox.close(Closing::Silent));
        assert!(!outbox.close(Closing::Abort {
            reason: "a".into(),
            message: "b".into()
        }));
        assert_eq!(*rx.closing.borrow(), Some(Closing::Silent));
    }
}

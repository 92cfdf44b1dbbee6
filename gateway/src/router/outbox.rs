//! A session's way out: a bounded queue of encoded frames and a close signal. The router pushes into it
//! without ever waiting; the transport drains it. A peer that stops reading fills its queue and, past the
//! configured time, is closed, so one slow browser never grows the gateway's memory or stalls publishers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

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

/// The queue both sides share. A plain deque under a short lock: it allocates nothing while a session is
/// idle, and the writer takes everything queued in one step.
#[derive(Debug, Default)]
struct Queue {
    frames: Mutex<VecDeque<Frame>>,
    /// Signalled when the queue goes from empty to non-empty.
    ready: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Frame>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the transport receives: the frames to write and the close request to watch.
pub struct OutboxReceiver {
    /// The queued frames.
    pub frames: FrameReceiver,
    /// Becomes `Some` once the session must close.
    pub closing: watch::Receiver<Option<Closing>>,
}

/// The reading end of an outbox's frame queue.
pub struct FrameReceiver {
    queue: Arc<Queue>,
}

impl FrameReceiver {
    /// Moves every queued frame into `batch` (which should be empty), without waiting; false when there
    /// was none.
    pub fn take_batch(&self, batch: &mut VecDeque<Frame>) -> bool {
        let mut frames = self.queue.lock();
        if frames.is_empty() {
            return false;
        }
        std::mem::swap(&mut *frames, batch);
        true
    }

    /// Waits until frames are queued, then moves them all into `batch` (which should be empty).
    pub async fn next_batch(&self, batch: &mut VecDeque<Frame>) {
        loop {
            let notified = self.queue.ready.notified();
            if self.take_batch(batch) {
                return;
            }
            notified.await;
        }
    }

    /// The next queued frame, without waiting (for tests and tools).
    pub fn try_recv(&self) -> Option<Frame> {
        self.queue.lock().pop_front()
    }
}

/// The sending side of one session's bounded outbound queue, shared by the router and the session.
#[derive(Debug)]
pub struct Outbox {
    serializer: Serializer,
    queue: Arc<Queue>,
    capacity: usize,
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
        let queue = Arc::new(Queue::default());
        let (closing_tx, closing_rx) = watch::channel(None);
        let outbox = Outbox {
            serializer,
            queue: Arc::clone(&queue),
            capacity: capacity.max(1),
            closing: closing_tx,
            full_since: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            slow_consumer_limit,
        };
        let receiver = OutboxReceiver {
            frames: FrameReceiver { queue },
            closing: closing_rx,
        };
        (outbox, receiver)
    }

    /// The serializer the peer negotiated; frames pushed here must be encoded with it.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Encodes and queues a message for this peer.
    pub fn send_message(&self, message: &Message) -> bool {
        self.send(self.serializer.encode(message))
    }

    /// Queues an already encoded frame without waiting. Returns false when the frame was not queued: its
    /// queue is full (the frame is dropped for this peer and counted; once the
    /// queue has been full longer than the limit, the session is closed).
    pub fn send(&self, frame: Frame) -> bool {
        let was_empty = {
            let mut frames = self.queue.lock();
            if frames.len() >= self.capacity {
                drop(frames);
                self.overflow();
                return false;
            }
            frames.push_back(frame);
            frames.len() == 1
        };
        if self.full_since.load(Ordering::Relaxed) != 0 {
            self.full_since.store(0, Ordering::Relaxed);
        }
        if was_empty {
            self.queue.ready.notify_one();
        }
        true
    }

    /// A frame did not fit: count it, and close the session once the queue has been full too long.
    fn overflow(&self) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let since =
            match self
                .full_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => now,
                Err(since) => since,
            };
        if Duration::from_millis(now - since) >= self.slow_consumer_limit {
            let message = format!(
                "outbound queue full for more than {} ms; {dropped} messages dropped",
                self.slow_consumer_limit.as_millis()
            );
            let closing = Closing::Abort {
                reason: "switchboard.error.slow_consumer".into(),
                message,
            };
            if self.close(closing) {
                tracing::warn!(dropped, "closing slow consumer");
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
        assert!(rx.frames.try_recv().is_some());
    }

    #[test]
    fn a_queue_that_drains_in_time_stays_open() {
        let (outbox, rx) = Outbox::new(Serializer::Json, 1, Duration::from_secs(60));
        let frame = Serializer::Json.encode(&Message::abort("x", "y"));
        assert!(outbox.send(frame.clone()));
        assert!(!outbox.send(frame.clone()));
        assert!(!outbox.is_closing());
        assert!(rx.frames.try_recv().is_some(), "queued frame");
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

//! A session's way out: a queue of encoded frames, bounded in bytes and in frames, and a close signal. The
//! router pushes into it without ever waiting; the transport drains it.
//!
//! The promise to a client: while its session is open, it receives every event it is eligible for, in
//! publication order. Nothing is ever dropped from an open session's queue. When the gateway cannot keep
//! that promise (the queue would pass its byte or frame bound, or it stayed above its low-water mark,
//! a quarter of either bound, for longer than the slow-consumer limit) the session is closed with ABORT
//! `switchboard.error.slow_consumer`, saying how many bytes were queued and for how long, and what was
//! queued is discarded. The low-water timer runs on the connection's own task ([`Outbox::stalled_at`]),
//! so a client that stops reading is closed in time whether or not anything else is published.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::wamp::{Frame, Message, Serializer};

/// ABORT reason of a session closed because it did not keep up.
pub const SLOW_CONSUMER: &str = "switchboard.error.slow_consumer";

/// Why and how a session is being closed; the transport sends the matching WAMP message, then closes the
/// socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Closing {
    /// Send ABORT with this reason URI and message (protocol violations, refused HELLO, slow consumer).
    Abort {
        /// The ABORT's reason URI.
        reason: String,
        /// Details.message: what went wrong, for a human.
        message: String,
    },
    /// Send GOODBYE with this reason and wait briefly for the peer's GOODBYE (shutdown, kick).
    Goodbye {
        /// The GOODBYE's reason URI.
        reason: String,
        /// Details.message.
        message: String,
    },
    /// Close the socket without a WAMP message (the session already ended cleanly).
    Silent,
    /// The peer broke the transport's protocol: close with this WebSocket close code and reason, no
    /// WAMP message.
    Failed {
        /// The WebSocket close code (RFC 6455 section 7.4.1).
        code: u16,
        /// The close frame's reason text.
        reason: String,
    },
}

/// The bounds of one session's outbound queue (`[gateway] outbound_queue_bytes`, `outbound_queue`,
/// `slow_consumer_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most bytes queued and not yet written to the socket.
    pub max_bytes: usize,
    /// Most frames queued and not yet written.
    pub max_frames: usize,
    /// How long the queue may stay above its low-water mark.
    pub slow_consumer: Duration,
}

impl QueueLimits {
    fn above_low_water(&self, bytes: usize, frames: usize) -> bool {
        bytes > self.max_bytes / 4 || frames > self.max_frames / 4
    }
}

/// What the router and the transport share: the frames, what they weigh, and the signals between them.
/// A plain deque under a short lock: it allocates nothing while a session is idle, and the writer takes
/// everything queued in one step.
#[derive(Debug)]
struct Shared {
    frames: Mutex<VecDeque<Frame>>,
    limits: QueueLimits,
    /// Bytes and frames queued or taken by the writer and not yet written to the socket.
    bytes: AtomicUsize,
    count: AtomicUsize,
    /// Milliseconds since [`epoch`] (plus one) when the queue went above its low-water mark; 0 below it.
    above_low_since: AtomicU64,
    /// Signalled when the queue goes from empty to non-empty.
    ready: Notify,
    /// Signalled when the queue crosses its low-water mark, either way: the connection arms or disarms
    /// its slow-consumer timer, and stops or resumes reading requests.
    level: Notify,
    /// The close request, set once (the first wins); read on every push.
    closing: OnceLock<Closing>,
    /// Signalled when `closing` is set.
    closed: Notify,
    /// Bytes the writer has handed to the socket so far: whether a client reads at all.
    written: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Frame>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_above_low_water(&self) -> bool {
        self.limits.above_low_water(
            self.bytes.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        )
    }

    /// Takes `bytes` and `frames` off the books (written, or discarded), saturating at zero.
    fn release(&self, bytes: usize, frames: usize) {
        let sub = |counter: &AtomicUsize, amount: usize| {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |value| {
                Some(value.saturating_sub(amount))
            });
        };
        sub(&self.bytes, bytes);
        sub(&self.count, frames);
        if self.above_low_since.load(Ordering::Relaxed) != 0 && !self.is_above_low_water() {
            self.above_low_since.store(0, Ordering::Relaxed);
            self.level.notify_one();
        }
    }
}

/// What the previous progress check saw (see [`Outbox::check_progress`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    written: u64,
    pending: bool,
}

/// What the transport receives: the frames to write and the close request to watch.
pub struct OutboxReceiver {
    /// The queued frames.
    pub frames: FrameReceiver,
    /// Says when, and how, the session must close.
    pub closing: CloseSignal,
}

/// The close request of an outbox, as the transport's tasks (reader, writer) wait for it. Its own small
/// type rather than a `tokio::sync::watch` channel: a watch channel costs about 400 bytes per connection
/// (its sender notifies through eight `Notify`s), a third of what an idle session otherwise holds, and
/// the value changes only once.
#[derive(Debug, Clone)]
pub struct CloseSignal {
    shared: Arc<Shared>,
}

impl CloseSignal {
    /// Resolves once a close was requested (at once if it already was).
    pub async fn closed(&self) {
        let notified = self.shared.closed.notified();
        tokio::pin!(notified);
        // Registered before the check, so a close between the check and the wait is not missed.
        notified.as_mut().enable();
        if self.shared.closing.get().is_some() {
            return;
        }
        notified.await;
    }

    /// The close request, once there is one.
    pub fn get(&self) -> Option<Closing> {
        self.shared.closing.get().cloned()
    }

    /// True once a close was requested.
    pub fn is_closed(&self) -> bool {
        self.shared.closing.get().is_some()
    }
}

/// The reading end of an outbox's frame queue.
pub struct FrameReceiver {
    shared: Arc<Shared>,
}

impl FrameReceiver {
    /// Moves every queued frame into `batch` (which should be empty), without waiting; false when there
    /// was none. The frames still count against the bounds until [`FrameReceiver::written`].
    pub fn take_batch(&self, batch: &mut VecDeque<Frame>) -> bool {
        let mut frames = self.shared.lock();
        if frames.is_empty() {
            return false;
        }
        std::mem::swap(&mut *frames, batch);
        drop(frames);
        metrics::histogram!("switchboard_outbound_queue_frames").record(batch.len() as f64);
        true
    }

    /// Waits until frames are queued, then moves them all into `batch` (which should be empty).
    pub async fn next_batch(&self, batch: &mut VecDeque<Frame>) {
        loop {
            let notified = self.shared.ready.notified();
            if self.take_batch(batch) {
                return;
            }
            notified.await;
        }
    }

    /// The writer handed a frame of `bytes` bytes to the socket: it no longer counts against the bounds.
    pub fn written(&self, bytes: usize) {
        self.written_many(bytes, 1);
    }

    /// The writer handed `frames` frames of `bytes` bytes in all to the socket. Writers report in
    /// slices of a batch rather than per frame: the counters share a cache line with the router's
    /// pushes, and touching it per frame from the writer's core costs the fan-out measurably.
    pub fn written_many(&self, bytes: usize, frames: usize) {
        self.shared
            .written
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.shared.release(bytes, frames);
    }

    /// The next queued frame, without waiting (for tests and tools).
    pub fn try_recv(&self) -> Option<Frame> {
        let frame = self.shared.lock().pop_front()?;
        self.written(frame.len());
        Some(frame)
    }
}

/// The sending side of one session's bounded outbound queue, shared by the router and the session.
#[derive(Debug)]
pub struct Outbox {
    serializer: Serializer,
    /// The transport the session came over, as the session meta API names it.
    transport: &'static str,
    shared: Arc<Shared>,
}

/// A process-wide time origin so that "above low water since" fits in an atomic.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    (epoch().elapsed().as_millis() as u64).saturating_add(1)
}

impl Outbox {
    /// A new, empty outbox for a peer speaking `serializer`, bounded by `limits`.
    pub fn new(serializer: Serializer, limits: QueueLimits) -> (Self, OutboxReceiver) {
        let limits = QueueLimits {
            max_frames: limits.max_frames.max(1),
            ..limits
        };
        let shared = Arc::new(Shared {
            frames: Mutex::default(),
            limits,
            bytes: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
            above_low_since: AtomicU64::new(0),
            ready: Notify::new(),
            level: Notify::new(),
            closing: OnceLock::new(),
            closed: Notify::new(),
            written: AtomicU64::new(0),
        });
        let outbox = Outbox {
            serializer,
            transport: "websocket",
            shared: Arc::clone(&shared),
        };
        let receiver = OutboxReceiver {
            frames: FrameReceiver {
                shared: Arc::clone(&shared),
            },
            closing: CloseSignal { shared },
        };
        (outbox, receiver)
    }

    /// Names the transport the session came over (`websocket` unless said otherwise), for
    /// `wamp.session.get` and `on_join`'s `transport.type`.
    pub fn over(mut self, transport: &'static str) -> Self {
        self.transport = transport;
        self
    }

    /// The transport the session came over (`websocket`, `rawsocket`, `longpoll`).
    pub fn transport(&self) -> &'static str {
        self.transport
    }

    /// The serializer the peer negotiated; frames pushed here must be encoded with it.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Encodes and queues a message for this peer.
    pub fn send_message(&self, message: &Message) -> bool {
        self.send(self.serializer.encode(message))
    }

    /// Queues an already encoded frame without waiting. Returns false when it was not queued: the session
    /// is closing, or the frame would pass the queue's bounds, which closes the session as a slow
    /// consumer (never a silent gap: the client sees ABORT, not a missing event).
    pub fn send(&self, frame: Frame) -> bool {
        if self.is_closing() {
            metrics::counter!("switchboard_dropped_total", "reason" => "session_closing")
                .increment(1);
            return false;
        }
        let len = frame.len();
        let limits = &self.shared.limits;
        let mut frames = self.shared.lock();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        let count = self.shared.count.load(Ordering::Relaxed);
        let over = if bytes.saturating_add(len) > limits.max_bytes {
            Some("bytes")
        } else if count >= limits.max_frames {
            Some("frames")
        } else {
            None
        };
        if let Some(which) = over {
            drop(frames);
            self.close_slow(which, len);
            return false;
        }
        frames.push_back(frame);
        let was_empty = frames.len() == 1;
        self.shared.bytes.fetch_add(len, Ordering::Relaxed);
        self.shared.count.fetch_add(1, Ordering::Relaxed);
        drop(frames);
        if limits.above_low_water(bytes + len, count + 1)
            && self
                .shared
                .above_low_since
                .compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.shared.level.notify_one();
        }
        if was_empty {
            self.shared.ready.notify_one();
        }
        true
    }

    /// Bytes queued for this peer and not yet written to its socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// When the session will count as stalled if its queue stays above the low-water mark: `None` while
    /// it is below. The connection arms a timer for it and calls [`Outbox::check_stalled`] then.
    pub fn stalled_at(&self) -> Option<tokio::time::Instant> {
        let since = self.shared.above_low_since.load(Ordering::Relaxed);
        (since != 0).then(|| {
            let above = epoch() + Duration::from_millis(since - 1);
            tokio::time::Instant::from_std(above + self.shared.limits.slow_consumer)
        })
    }

    /// Resolves when the queue crosses its low-water mark, either way (the time to re-read
    /// [`Outbox::stalled_at`] and [`Outbox::is_backed_up`]).
    pub async fn level_changed(&self) {
        self.shared.level.notified().await
    }

    /// Closes the session as a slow consumer if its queue has been above the low-water mark for the whole
    /// slow-consumer limit; true when it did.
    pub fn check_stalled(&self) -> bool {
        let since = self.shared.above_low_since.load(Ordering::Relaxed);
        let limit = self.shared.limits.slow_consumer.as_millis() as u64;
        if since != 0 && now_ms().saturating_sub(since) >= limit && !self.is_closing() {
            self.close_slow("stalled", 0);
            return true;
        }
        false
    }

    /// The periodic progress check (the connection calls it every slow-consumer interval): a session with
    /// frames queued at this check and the previous one, and nothing written to its socket in between,
    /// has a client that stopped reading; it is closed as a slow consumer, however little is queued
    /// (below the low-water mark a queue would never count as stalled otherwise, and the kernel's socket
    /// buffers would hold megabytes more for it). True when it closed the session.
    pub fn check_progress(&self, progress: &mut Progress) -> bool {
        let written = self.shared.written.load(Ordering::Relaxed);
        let pending = self.shared.count.load(Ordering::Relaxed) > 0;
        let stuck = pending && progress.pending && written == progress.written;
        *progress = Progress { written, pending };
        if stuck && !self.is_closing() {
            self.close_slow("no_progress", 0);
            return true;
        }
        false
    }

    /// True while the queue is above its low-water mark: the connection stops reading requests until it
    /// drains, so that a client pipelining requests cannot push its own replies past the bounds.
    pub fn is_backed_up(&self) -> bool {
        self.shared.is_above_low_water()
    }

    /// Closes the session with ABORT `switchboard.error.slow_consumer` and discards what is queued.
    /// `offered` is the size of the message that would have passed a bound (0 for the timer's closes).
    fn close_slow(&self, which: &'static str, offered: usize) {
        let queued = self.queued_bytes();
        let since = self.shared.above_low_since.load(Ordering::Relaxed);
        let for_ms = if since == 0 {
            0
        } else {
            now_ms().saturating_sub(since)
        };
        let limits = &self.shared.limits;
        let why = match which {
            "bytes" => format!(
                "a message of {offered} bytes would pass the bound of {} bytes",
                limits.max_bytes
            ),
            "frames" => format!(
                "one more message would pass the bound of {} messages",
                limits.max_frames
            ),
            "no_progress" => format!(
                "nothing was written to its socket for more than {} ms while messages waited",
                limits.slow_consumer.as_millis()
            ),
            _ => format!(
                "it stayed above its low-water mark for more than {} ms",
                limits.slow_consumer.as_millis()
            ),
        };
        let message = format!(
            "the client is not reading fast enough: {queued} bytes queued, above the low-water mark for \
             {for_ms} ms; the session is closed because {why}"
        );
        let closing = Closing::Abort {
            reason: SLOW_CONSUMER.into(),
            message,
        };
        if self.close(closing) {
            let discarded = std::mem::take(&mut *self.shared.lock());
            let discarded_bytes = discarded.iter().map(Frame::len).sum();
            self.shared.release(discarded_bytes, discarded.len());
            // A client that stopped reading counts as stalled, whichever check noticed it.
            let reason = if which == "no_progress" {
                "stalled"
            } else {
                which
            };
            metrics::counter!("switchboard_slow_consumer_closes_total", "reason" => reason)
                .increment(1);
            metrics::histogram!("switchboard_slow_consumer_queued_bytes").record(queued as f64);
            if let Some(suppressed) = crate::throttle::allow("slow_consumer", which) {
                tracing::warn!(queued, for_ms, which, suppressed, "closing slow consumer");
            }
        }
    }

    /// Asks the transport to close the session; the first request wins. Returns whether this call was
    /// the first.
    pub fn close(&self, closing: Closing) -> bool {
        let first = self.shared.closing.set(closing).is_ok();
        if first {
            self.shared.closed.notify_waiters();
        }
        first
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.get().is_some()
    }
}

#[cfg(test)]
mod tests;

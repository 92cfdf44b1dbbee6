//! What every WAMP transport (WebSocket, RawSocket) does the same way: the reading side's loop that feeds a
//! [`Session`] and keeps its timers (the HELLO deadline, then the slow-consumer checks), and the writer's
//! batched draining of the session's outbox into a sink.

use std::collections::VecDeque;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::router::outbox::{CloseSignal, FrameReceiver, Progress};
use crate::router::{Closing, Limits, Outbox, Session};
use crate::wamp::{Frame, Message};

/// Frames a writer keeps room for between bursts; more is given back after a burst.
const IDLE_BATCH_CAPACITY: usize = 16;
/// How many written bytes a writer accumulates before it reports them to the outbox.
const WRITTEN_REPORT_BYTES: usize = 64 * 1024;

/// What the reading side does after one item from the peer.
pub(super) enum Flow {
    /// Keep reading.
    Continue,
    /// Stop: the peer closed or the connection failed.
    Stop,
    /// Stop: the peer is sending a message too large, which was refused (ABORT sent); what it still sends
    /// should be read away before closing, so that it sees the ABORT.
    Oversized,
}

/// Reads `stream` into `session` until the peer closes, the session closes or `on_read` says stop; applies
/// the HELLO deadline while the session is not joined and the slow-consumer checks while it is, and turns
/// a shutdown into the session's GOODBYE. `on_read` gets None at the end of the stream. Returns whether
/// it stopped on [`Flow::Oversized`].
pub(super) async fn drive<S, T>(
    session: &mut Session,
    outbox: &Outbox,
    limits: Limits,
    closing: CloseSignal,
    stream: &mut S,
    shutdown: &mut watch::Receiver<bool>,
    mut on_read: impl FnMut(&mut Session, &Outbox, Option<T>) -> Flow,
) -> bool
where
    S: Stream<Item = T> + Unpin,
{
    // One timer per connection: the HELLO deadline while the session is not joined (again after a
    // GOODBYE), then the slow-consumer deadlines: the low-water mark's, and a progress check every
    // `slow_consumer` (frames queued at two checks in a row with nothing written in between: a client
    // that stopped reading, however little is queued).
    let slow = limits.queue.slow_consumer;
    let mut hello_deadline = Instant::now() + limits.hello_timeout;
    let mut next_check = Instant::now() + slow;
    let mut progress = Progress::default();
    let mut was_joined = false;
    let timer = tokio::time::sleep_until(hello_deadline);
    tokio::pin!(timer);
    if *shutdown.borrow() {
        session.shutdown();
    }
    loop {
        let joined = session.is_joined();
        if joined != was_joined {
            was_joined = joined;
            if joined {
                next_check = Instant::now() + slow;
            } else {
                hello_deadline = Instant::now() + limits.hello_timeout;
            }
        }
        let deadline = if joined {
            Some(
                outbox
                    .stalled_at()
                    .map_or(next_check, |at| at.min(next_check)),
            )
        } else {
            (!outbox.is_closing()).then_some(hello_deadline)
        };
        if let Some(at) = deadline.filter(|at| timer.deadline() != *at) {
            timer.as_mut().reset(at);
        }
        // While the queue is backed up, requests wait in the socket: a client pipelining requests
        // without reading its replies cannot push them past the bounds.
        let backed_up = outbox.is_backed_up();
        tokio::select! {
            item = stream.next(), if !backed_up => match on_read(session, outbox, item) {
                Flow::Continue => {}
                Flow::Stop => return false,
                Flow::Oversized => return true,
            },
            _ = outbox.level_changed() => {}
            () = closing.closed() => return false,
            _ = shutdown.changed() => session.shutdown(),
            _ = &mut timer, if deadline.is_some() => {
                if !joined {
                    let message = format!(
                        "session not established (HELLO, then AUTHENTICATE if challenged) within {} ms",
                        limits.hello_timeout.as_millis()
                    );
                    session.abort(crate::wamp::refusal::PROTOCOL_VIOLATION, message);
                } else if !outbox.check_stalled() && Instant::now() >= next_check {
                    outbox.check_progress(&mut progress);
                    next_check = Instant::now() + slow;
                }
            }
        }
    }
}

/// Writes every frame of `batch` (converted by `convert`) with one flush, reporting what was written to
/// the outbox, then gives back memory a burst left behind.
pub(super) async fn write_batch<K, M>(
    sink: &mut K,
    frames: &FrameReceiver,
    batch: &mut VecDeque<Frame>,
    convert: impl Fn(Frame) -> M,
) -> Result<(), K::Error>
where
    K: Sink<M> + Unpin,
{
    // Reported every WRITTEN_REPORT_BYTES (and at the end): close enough for the queue's bounds, and
    // one touch of the shared counters per slice instead of per frame.
    let (mut bytes, mut count) = (0, 0);
    while let Some(frame) = batch.pop_front() {
        bytes += frame.len();
        count += 1;
        sink.feed(convert(frame)).await?;
        if bytes >= WRITTEN_REPORT_BYTES {
            frames.written_many(std::mem::take(&mut bytes), std::mem::take(&mut count));
        }
    }
    if count > 0 {
        frames.written_many(bytes, count);
    }
    if batch.capacity() > IDLE_BATCH_CAPACITY {
        batch.shrink_to(IDLE_BATCH_CAPACITY);
    }
    sink.flush().await
}

/// The WAMP message a closing session sends last (ABORT or GOODBYE, none for a silent or failed close),
/// with the reason text.
pub(super) fn last_words(closing: Option<Closing>) -> (Option<Message>, Option<Closing>) {
    let message = match &closing {
        Some(Closing::Abort { reason, message }) => Some(Message::abort(reason, message.clone())),
        Some(Closing::Goodbye { reason, message }) => {
            let mut details = crate::wamp::Dict::new();
            details.insert("message".into(), message.clone().into());
            Some(Message::Goodbye {
                details,
                reason: reason.clone(),
            })
        }
        Some(Closing::Failed { .. } | Closing::Silent) | None => None,
    };
    (message, closing)
}

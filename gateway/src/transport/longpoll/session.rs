//! One long-poll transport's state, shared by its HTTP requests and its session task. The session task
//! is the WebSocket one ([`super::super::driver::drive`]) fed from a channel instead of a socket: `send`
//! requests push bodies into the channel, `receive` requests play the socket writer, draining the outbox
//! and reporting what they delivered, so that the slow-consumer policy applies unchanged (a client that
//! stops polling is closed like a WebSocket client that stops reading).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::accept::Slot;
use super::super::driver::{self, Flow};
use super::super::inbound;
use super::wire::Protocol;
use super::LongPoll;
use crate::router::outbox::{CloseSignal, FrameReceiver};
use crate::router::{Closing, Outbox, OutboxReceiver, Session};
use crate::wamp::Frame;

/// How long a closed session's transport stays known after its last words: the client's answer to a
/// GOODBYE and its `close` then get 204 instead of 404 (at least `slow_consumer_ms`, as on WebSocket).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `send` bodies waiting for the session task; a `send` past it waits (HTTP backpressure).
pub(super) const INBOUND_CAPACITY: usize = 16;

/// What a `receive` request answers.
pub(super) enum Delivery {
    /// A body of messages.
    Body(Vec<u8>),
    /// Nothing arrived in time, or a newer `receive` took over, or the client closed.
    Nothing,
    /// The session has ended and everything it had to say was delivered.
    Ended,
}

/// The state a transport's requests and its session task share.
pub(super) struct Transport {
    /// The negotiated protocol.
    pub(super) protocol: Protocol,
    /// `send` bodies, to the session task.
    pub(super) inbound: mpsc::Sender<Bytes>,
    /// The session's outbox, to refuse an oversized body from the request handler.
    pub(super) outbox: Arc<Outbox>,
    /// Set by the client's `close`.
    pub(super) client_closed: CancellationToken,
    frames: FrameReceiver,
    closing: CloseSignal,
    /// Frames taken from the outbox and not yet delivered (they count against its bounds until then).
    pending: Mutex<VecDeque<Frame>>,
    /// Bumped by every `receive`; an older one waiting sees it and answers 204.
    polls: watch::Sender<u64>,
    /// Set once the session's last words are delivered.
    ended: watch::Sender<bool>,
    /// When the last request began or ended, and how many `receive` requests are being held.
    last_seen: Mutex<Instant>,
    holding: AtomicUsize,
}

/// Counts a held `receive` and marks the transport seen when it ends.
pub(super) struct Holding<'a>(&'a Transport);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.holding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Transport {
    /// A transport for a new session speaking `protocol`.
    pub(super) fn new(
        protocol: Protocol,
        outbox: Arc<Outbox>,
        receiver: OutboxReceiver,
    ) -> (Self, mpsc::Receiver<Bytes>) {
        let (inbound, rx) = mpsc::channel(INBOUND_CAPACITY);
        let transport = Transport {
            protocol,
            inbound,
            outbox,
            client_closed: CancellationToken::new(),
            frames: receiver.frames,
            closing: receiver.closing,
            pending: Mutex::default(),
            polls: watch::channel(0).0,
            ended: watch::channel(false).0,
            last_seen: Mutex::new(Instant::now()),
            holding: AtomicUsize::new(0),
        };
        (transport, rx)
    }

    fn pending(&self) -> MutexGuard<'_, VecDeque<Frame>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request: the session timeout counts from the last one.
    pub(super) fn touch(&self) {
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// When the transport counts as abandoned, if no request comes before; None while a `receive` is
    /// held.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.holding.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(*self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) + timeout)
    }

    /// True once the session is closing (a `send` is then read away and ignored).
    pub(super) fn is_closing(&self) -> bool {
        self.closing.is_closed()
    }

    /// One `receive`: waits up to `timeout` for something to deliver, answering at once if something is
    /// queued. Batched bodies hold at most `max_bytes` (or one larger message).
    pub(super) async fn receive(&self, timeout: Duration, max_bytes: usize) -> Delivery {
        self.holding.fetch_add(1, Ordering::Relaxed);
        let _holding = Holding(self);
        let mut polls = self.polls.subscribe();
        let mut mine = 0;
        self.polls.send_modify(|n| {
            *n += 1;
            mine = *n;
        });
        polls.borrow_and_update();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut batch = VecDeque::new();
        loop {
            // The client closed the transport: what this receive raced with, not the session's end.
            if self.client_closed.is_cancelled() {
                return Delivery::Nothing;
            }
            if let Some(delivery) = self.deliver(max_bytes) {
                return delivery;
            }
            tokio::select! {
                () = self.frames.next_batch(&mut batch) => self.pending().append(&mut batch),
                () = self.closing.closed() => {}
                _ = polls.changed() => if *polls.borrow_and_update() != mine {
                    return Delivery::Nothing;
                },
                () = self.client_closed.cancelled() => return Delivery::Nothing,
                () = &mut deadline => return Delivery::Nothing,
            }
        }
    }

    /// What can be answered without waiting: queued messages, or the session's last words once it is
    /// closing (on WebSocket, an ABORT or GOODBYE likewise goes out instead of what is still queued).
    fn deliver(&self, max_bytes: usize) -> Option<Delivery> {
        if *self.ended.borrow() {
            return Some(Delivery::Ended);
        }
        let mut pending = self.pending();
        let mut batch = VecDeque::new();
        if self.frames.take_batch(&mut batch) {
            pending.append(&mut batch);
        }
        let closed = self.closing.get();
        if let Some(closed) = closed {
            let (message, _) = driver::last_words(Some(closed));
            if let Some(message) = message {
                pending.clear();
                let frame = self.outbox.serializer().encode(&message);
                pending.push_back(frame);
            }
            if pending.is_empty() {
                self.ended.send_replace(true);
                return Some(Delivery::Ended);
            }
            let (body, _, _) = self.protocol.take_body(&mut pending, max_bytes);
            if pending.is_empty() {
                self.ended.send_replace(true);
            }
            return Some(Delivery::Body(body));
        }
        if pending.is_empty() {
            return None;
        }
        let (body, bytes, frames) = self.protocol.take_body(&mut pending, max_bytes);
        self.frames.written_many(bytes, frames);
        Some(Delivery::Body(body))
    }
}

/// What the session task's stream yields besides bodies.
enum Inbound {
    Body(Bytes),
    /// No request for the session timeout.
    Expired,
    /// The client sent `close`.
    Closed,
}

/// The session task's input: `send` bodies, then an end when the client closes or stops sending
/// requests for `timeout`.
fn inbound_stream(
    rx: mpsc::Receiver<Bytes>,
    transport: Arc<Transport>,
    timeout: Duration,
) -> impl Stream<Item = Inbound> {
    futures_util::stream::unfold((rx, transport), move |(mut rx, transport)| async move {
        loop {
            let idle = transport.idle_deadline(timeout);
            let wake = idle.unwrap_or_else(|| Instant::now() + timeout);
            let item = tokio::select! {
                body = rx.recv() => match body {
                    Some(body) => Inbound::Body(body),
                    None => Inbound::Closed,
                },
                () = transport.client_closed.cancelled() => Inbound::Closed,
                () = tokio::time::sleep_until(wake) => {
                    match transport.idle_deadline(timeout) {
                        Some(at) if at <= Instant::now() => Inbound::Expired,
                        _ => continue,
                    }
                }
            };
            return Some((item, (rx, transport)));
        }
    })
}

/// Runs one long-poll transport's session until it ends, then keeps the transport known for a short
/// grace (so that the client's last requests are answered, not refused) and frees its slot.
pub(super) async fn run(
    longpoll: Arc<LongPoll>,
    id: String,
    transport: Arc<Transport>,
    rx: mpsc::Receiver<Bytes>,
    slot: Slot,
) {
    let router = Arc::clone(&longpoll.router);
    let limits = router.limits;
    let outbox = Arc::clone(&transport.outbox);
    let protocol = transport.protocol;
    let mut shutdown = longpoll.shutdown.clone();
    let mut session = Session::new(router, Arc::clone(&outbox));
    let mut stream = Box::pin(inbound_stream(
        rx,
        Arc::clone(&transport),
        longpoll.limits.longpoll_session_timeout,
    ));
    let mut expired = false;
    driver::drive(
        &mut session,
        &outbox,
        limits,
        transport.closing.clone(),
        &mut stream,
        &mut shutdown,
        |session, _outbox, item| match item {
            Some(Inbound::Body(body)) => {
                on_body(session, protocol, &body, limits.max_message_bytes);
                Flow::Continue
            }
            Some(Inbound::Expired) => {
                expired = true;
                Flow::Stop
            }
            Some(Inbound::Closed) | None => Flow::Stop,
        },
    )
    .await;
    let session_id = session.id();
    session.leave();
    outbox.close(Closing::Silent);
    drop(session);
    drop(stream);
    if !expired {
        let grace = CLOSE_GRACE.max(limits.queue.slow_consumer);
        let mut ended = transport.ended.subscribe();
        let said = async {
            // At shutdown no further request can arrive (the listener is closed): end once the last
            // words are delivered. Otherwise wait for the client's `close` (or the grace).
            loop {
                if *shutdown.borrow() && *ended.borrow_and_update() {
                    return;
                }
                tokio::select! {
                    () = transport.client_closed.cancelled() => return,
                    changed = ended.changed() => if changed.is_err() { return },
                    changed = shutdown.changed() => if changed.is_err() { return },
                }
            }
        };
        let _ = tokio::time::timeout(grace, said).await;
    }
    longpoll.forget(&id);
    transport.client_closed.cancel();
    drop(slot);
    tracing::debug!(
        session = session_id,
        expired,
        protocol = %protocol.name(),
        "long-poll transport closed"
    );
}

/// One `send` body: each message decoded for the session; the first that fails ends the session with
/// ABORT, exactly as on WebSocket.
fn on_body(session: &mut Session, protocol: Protocol, body: &[u8], max_message_bytes: usize) {
    let messages = match protocol.split(body) {
        Ok(messages) => messages,
        Err(reason) => {
            session.abort(crate::wamp::refusal::PROTOCOL_VIOLATION, reason);
            return;
        }
    };
    for bytes in messages {
        match inbound::decode(protocol.serializer, bytes, max_message_bytes) {
            Ok(message) => session.on_message(message),
            Err(refusal) => {
                session.abort(refusal.uri, refusal.message);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::QueueLimits;
    use crate::wamp::Serializer;

    fn transport(batched: bool) -> Arc<Transport> {
        let limits = QueueLimits {
            max_bytes: 1 << 20,
            max_frames: 100,
            slow_consumer: Duration::from_secs(60),
        };
        let (outbox, receiver) = Outbox::new(Serializer::Json, limits);
        let protocol = Protocol {
            serializer: Serializer::Json,
            batched,
        };
        Arc::new(Transport::new(protocol, Arc::new(outbox), receiver).0)
    }

    fn text(s: &str) -> Frame {
        Frame::Text(s.to_string().into())
    }

    fn body(delivery: Delivery) -> Vec<u8> {
        match delivery {
            Delivery::Body(body) => body,
            Delivery::Nothing => panic!("nothing delivered"),
            Delivery::Ended => panic!("ended"),
        }
    }

    const HOLD: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn plain_receives_take_one_message_each_and_report_it_written() {
        let t = transport(false);
        assert!(t.outbox.send(text("[1]")) && t.outbox.send(text("[22]")));
        assert_eq!(t.outbox.queued_bytes(), 7);
        assert_eq!(body(t.receive(HOLD, 1024).await), b"[1]");
        assert_eq!(
            t.outbox.queued_bytes(),
            4,
            "the rest still counts against the bounds"
        );
        assert_eq!(body(t.receive(HOLD, 1024).await), b"[22]");
        assert_eq!(t.outbox.queued_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_receive_waits_for_a_message_or_its_timeout() {
        let t = transport(true);
        assert!(matches!(t.receive(HOLD, 1024).await, Delivery::Nothing));
        let waiting = tokio::spawn({
            let t = Arc::clone(&t);
            async move { t.receive(HOLD, 1024).await }
        });
        tokio::task::yield_now().await;
        assert!(t.outbox.send(text("[1]")));
        assert_eq!(body(waiting.await.unwrap()), b"[1]\x1e");
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_receive_answers_the_older_one() {
        let t = transport(false);
        let older = tokio::spawn({
            let t = Arc::clone(&t);
            async move { t.receive(HOLD, 1024).await }
        });
        tokio::task::yield_now().await;
        let newer = tokio::spawn({
            let t = Arc::clone(&t);
            async move { t.receive(HOLD, 1024).await }
        });
        assert!(matches!(older.await.unwrap(), Delivery::Nothing));
        assert!(t.outbox.send(text("[1]")));
        assert_eq!(body(newer.await.unwrap()), b"[1]");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_session_delivers_its_last_words_then_ends() {
        let t = transport(false);
        assert!(t.outbox.send(text("[36]")));
        t.outbox.close(Closing::Abort {
            reason: "wamp.error.protocol_violation".into(),
            message: "bad".into(),
        });
        let abort: serde_json::Value =
            serde_json::from_slice(&body(t.receive(HOLD, 1024).await)).unwrap();
        assert_eq!(abort[0], 3);
        assert_eq!(abort[2], "wamp.error.protocol_violation");
        assert!(matches!(t.receive(HOLD, 1024).await, Delivery::Ended));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_receive_keeps_the_transport_from_expiring() {
        let t = transport(false);
        let timeout = Duration::from_secs(5);
        assert!(t.idle_deadline(timeout).is_some());
        let held = tokio::spawn({
            let t = Arc::clone(&t);
            async move { t.receive(HOLD, 1024).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(t.idle_deadline(timeout), None);
        held.await.unwrap();
        let deadline = t.idle_deadline(timeout).expect("not held any more");
        assert!(deadline >= Instant::now() + timeout - Duration::from_millis(1));
    }
}

//! Where node messages wait for the link task to publish them: one queue, in the order they were
//! sent (a call's progressive results before its final one), with a bound on what may be refused.
//!
//! - Refused past [`MAX_QUEUED_MESSAGES`] of its kind waiting: what starts something or can be made
//!   good — management requests (answered "missing"), invokes (the CALL is refused at once),
//!   progressive results (the call is ended explicitly), registration announcements (the full list is
//!   sent again on the next heartbeat).
//! - Never refused, and bounded by construction: what ends a call (its final result or error, a
//!   cancel), at most one each way per call in flight, and the callee lists nodes exchange when they
//!   meet, one per meeting. Dropping one would leave a caller waiting for ever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Refusable node messages that may wait for the link.
pub(crate) const MAX_QUEUED_MESSAGES: usize = 4096;

/// A node message on its way to the link.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The node queue it goes to; None fans it out to every node.
    pub(crate) to: Option<String>,
    /// The encoded node message.
    pub(crate) body: Vec<u8>,
}

/// A queued message, and whether it counts against [`MAX_QUEUED_MESSAGES`].
#[derive(Debug)]
struct Queued {
    out: Outgoing,
    refusable: bool,
}

/// The senders' side, held by [`Nodes`](super::Nodes).
#[derive(Debug)]
pub(super) struct Senders {
    queue: mpsc::UnboundedSender<Queued>,
    refusable: Arc<AtomicUsize>,
}

/// The link's side.
#[derive(Debug)]
pub(crate) struct Outbound {
    queue: mpsc::UnboundedReceiver<Queued>,
    refusable: Arc<AtomicUsize>,
}

/// A queue.
pub(super) fn queues() -> (Senders, Outbound) {
    let (queue, receiver) = mpsc::unbounded_channel();
    let refusable = Arc::new(AtomicUsize::new(0));
    let senders = Senders {
        queue,
        refusable: Arc::clone(&refusable),
    };
    let outbound = Outbound {
        queue: receiver,
        refusable,
    };
    (senders, outbound)
}

impl Senders {
    /// Queues `out` unless [`MAX_QUEUED_MESSAGES`] refusable messages wait already.
    pub(super) fn try_send(&self, out: Outgoing) -> bool {
        let admitted = self
            .refusable
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED_MESSAGES).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return false;
        }
        let queued = Queued {
            out,
            refusable: true,
        };
        if self.queue.send(queued).is_err() {
            self.refusable.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Queues `out`, whatever waits (false only when the link is gone).
    pub(super) fn send_always(&self, out: Outgoing) -> bool {
        let queued = Queued {
            out,
            refusable: false,
        };
        self.queue.send(queued).is_ok()
    }
}

impl Outbound {
    fn taken(&self, queued: Queued) -> Outgoing {
        if queued.refusable {
            self.refusable.fetch_sub(1, Ordering::AcqRel);
        }
        queued.out
    }

    /// The next message; None when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Outgoing> {
        let queued = self.queue.recv().await?;
        Some(self.taken(queued))
    }

    /// The next message already queued.
    pub(crate) fn try_recv(&mut self) -> Option<Outgoing> {
        let queued = self.queue.try_recv().ok()?;
        Some(self.taken(queued))
    }

    /// Drops everything queued (the link went down: it was meant for the connection that is gone);
    /// returns how many.
    pub(crate) fn drain(&mut self) -> usize {
        let mut dropped = 0;
        while self.try_recv().is_some() {
            dropped += 1;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(n: u8) -> Outgoing {
        Outgoing {
            to: None,
            body: vec![n],
        }
    }

    #[tokio::test]
    async fn what_ends_a_call_is_never_refused_and_order_is_kept() {
        let (senders, mut outbound) = queues();
        for _ in 0..MAX_QUEUED_MESSAGES {
            assert!(senders.try_send(out(1)));
        }
        assert!(!senders.try_send(out(1)), "the refusable ones are bounded");
        assert!(senders.send_always(out(2)), "an answer still goes");
        assert_eq!(outbound.recv().await.map(|o| o.body), Some(vec![1]));
        assert!(senders.try_send(out(3)), "one taken, one admitted");
        assert_eq!(outbound.drain(), MAX_QUEUED_MESSAGES + 1);
        assert!(outbound.try_recv().is_none());
        assert!(senders.try_send(out(1)), "drained: admitted again");
    }

    #[tokio::test]
    async fn messages_leave_in_the_order_they_came() {
        let (senders, mut outbound) = queues();
        assert!(senders.try_send(out(1)));
        assert!(senders.send_always(out(2)));
        assert!(senders.try_send(out(3)));
        let order: Vec<u8> = std::iter::from_fn(|| outbound.try_recv())
            .map(|o| o.body[0])
            .collect();
        assert_eq!(order, vec![1, 2, 3]);
    }
}

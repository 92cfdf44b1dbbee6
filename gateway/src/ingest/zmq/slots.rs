//! Connection slots of the ZeroMQ endpoint. There are [`super::MAX_CONNECTIONS`] of them, and a peer needs
//! no secret to take one (the ZMTP handshake carries none), so peers that connect and then stay silent
//! could hold them all and lock the web app's emitters out. When every slot is taken, a newcomer takes
//! the place of the oldest connection that has never delivered a validly signed message and is older
//! than [`EVICTABLE_AFTER`]: a peer that proved it holds the secret is never displaced, one that has not
//! can be. (libzmq and the emitter reconnect a closed PUSH by themselves.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How old a connection that never sent a signed message must be before a newcomer may displace it
/// (time for a real emitter to connect and send its first event).
pub(super) const EVICTABLE_AFTER: Duration = Duration::from_secs(2);
/// How long a newcomer waits for the displaced connection to give its slot back.
const HANDOVER: Duration = Duration::from_secs(1);

/// The endpoint's connection slots.
pub(super) struct Slots {
    free: Arc<Semaphore>,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    next_id: u64,
    by_id: HashMap<u64, Holder>,
}

struct Holder {
    since: Instant,
    proven: Arc<AtomicBool>,
    evict: CancellationToken,
}

/// One connection's slot: given back when dropped.
pub(super) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
    /// Set once the connection delivered a validly signed message.
    pub proven: Arc<AtomicBool>,
    /// Cancelled when a newcomer displaces this connection.
    pub evicted: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        held.by_id.remove(&self.id);
    }
}

impl Slots {
    /// `max` slots, all free.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            free: Arc::new(Semaphore::new(max)),
            held: Mutex::default(),
        })
    }

    /// A slot for a new connection: a free one, or the place of the oldest unproven connection older
    /// than [`EVICTABLE_AFTER`]; `None` when every slot is held by a proven or young connection.
    pub(super) async fn take(self: &Arc<Self>) -> Option<Slot> {
        if let Ok(permit) = Arc::clone(&self.free).try_acquire_owned() {
            return Some(self.register(permit));
        }
        let victim = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.by_id
                .values()
                .filter(|h| {
                    !h.proven.load(Ordering::Relaxed) && h.since.elapsed() >= EVICTABLE_AFTER
                })
                .min_by_key(|h| h.since)
                .map(|h| h.evict.clone())
        }?;
        victim.cancel();
        let permit = tokio::time::timeout(HANDOVER, Arc::clone(&self.free).acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(self.register(permit))
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let proven = Arc::new(AtomicBool::new(false));
        let evicted = CancellationToken::new();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let id = held.next_id;
        held.next_id += 1;
        held.by_id.insert(
            id,
            Holder {
                since: Instant::now(),
                proven: Arc::clone(&proven),
                evict: evicted.clone(),
            },
        );
        Slot {
            id,
            slots: Arc::clone(self),
            _permit: permit,
            proven,
            evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_displaces_the_oldest_unproven_connection_only() {
        let slots = Slots::new(2);
        let first = slots.take().await.expect("free");
        tokio::time::advance(Duration::from_millis(10)).await;
        let second = slots.take().await.expect("free");
        assert!(
            slots.take().await.is_none(),
            "both young: nobody is displaced"
        );

        std::thread::sleep(EVICTABLE_AFTER);
        first.proven.store(true, Ordering::Relaxed);
        let taker = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.take().await })
        };
        tokio::task::yield_now().await;
        assert!(
            second.evicted.is_cancelled(),
            "the unproven one is displaced"
        );
        assert!(!first.evicted.is_cancelled(), "the proven one stays");
        drop(second);
        let third = taker.await.expect("joined").expect("took the freed slot");
        third.proven.store(true, Ordering::Relaxed);
        std::thread::sleep(EVICTABLE_AFTER);
        assert!(slots.take().await.is_none(), "every slot proven: refused");
    }
}

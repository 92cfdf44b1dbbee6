//! Conflation (`_rate_ms` on SUBSCRIBE): a subscription receives at most one event per window, the newest;
//! on model topics the newest per pk, so that no row's final state is ever skipped, only its intermediate
//! states. The first event after a quiet window goes out at once; later ones wait for the window's end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::audience::Audience;
use crate::wamp::{Dict, Id, Payload};

/// Shortest accepted `_rate_ms`: below it conflation saves nothing and costs a timer per event.
pub(crate) const MIN_RATE_MS: u64 = 10;

/// Longest accepted `_rate_ms` (an hour).
pub(crate) const MAX_RATE_MS: u64 = 3_600_000;

/// Most distinct rows one window holds; past it the window is flushed early rather than grow.
pub(crate) const MAX_PENDING: usize = 10_000;

/// Most payload bytes (as JSON) one window holds, superseded events included until the window ends;
/// past it the window is flushed early: a window never holds more than a session's queue would.
pub(crate) const MAX_HELD_BYTES: usize = 1024 * 1024;

/// An event held back until the end of its window, with what delivering it needs.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The publication id.
    pub id: Id,
    /// The concrete topic.
    pub topic: Arc<str>,
    /// Arguments as published.
    pub payload: Payload,
    /// Publisher details to disclose.
    pub publisher_details: Dict,
    /// Who may receive it.
    pub audience: Audience,
}

/// What the broker should do with an event offered to a conflated subscription.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Deliver it now (the window was quiet); the caller arms the window's timer.
    DeliverAndArm,
    /// Held until the window's end (the timer is already armed).
    Held,
    /// Held, but the window holds too many distinct pks: flush now.
    HeldFlushNow,
    /// A private event: deliver what is held, then it.
    FlushThenDeliver,
}

/// One conflated subscription's window.
#[derive(Debug)]
pub(crate) struct Window {
    rate: Duration,
    /// Held events in the order of their latest publication.
    held: Vec<Option<Held>>,
    /// Index into `held` per topic and model row (pk text; `None` for events that are not model events).
    slots: HashMap<(Arc<str>, Option<String>), usize>,
    /// A timer is running for the current window.
    armed: bool,
    /// Payload bytes held since the window began (superseded events count until it ends).
    bytes: usize,
}

/// The row an event is about: the JSON text of its kwargs' `pk` when it is a model event (`action` and
/// `pk`); `None` otherwise (such events of one topic share one slot: the newest wins).
fn row_of(payload: &Payload) -> Option<String> {
    let Payload::ArgsKwargs(_, kwargs) = payload else {
        return None;
    };
    kwargs.get("action").and_then(Value::as_str)?;
    kwargs.get("pk").map(Value::to_string)
}

fn is_sync(payload: &Payload) -> bool {
    matches!(payload, Payload::ArgsKwargs(_, kwargs)
        if kwargs.get("action").and_then(Value::as_str) == Some("synced"))
}

impl Window {
    /// A quiet window of `rate`.
    pub(crate) fn new(rate: Duration) -> Self {
        Window {
            rate,
            held: Vec::new(),
            slots: HashMap::new(),
            armed: false,
            bytes: 0,
        }
    }

    /// The window's length.
    pub(crate) fn rate(&self) -> Duration {
        self.rate
    }

    /// Offers an event on `topic`: in a quiet window it goes out now, else it replaces the held event of
    /// its row (same topic, same pk). A private event (black or white listed) replaces nothing: what is
    /// held goes out first, then it, so nobody's view of a row is ever set back.
    pub(crate) fn offer(
        &mut self,
        event: impl FnOnce() -> Held,
        topic: &str,
        payload: &Payload,
        private: bool,
    ) -> Offer {
        if !self.armed {
            self.armed = true;
            return Offer::DeliverAndArm;
        }
        if private {
            return Offer::FlushThenDeliver;
        }
        if is_sync(payload) {
            // A sync replaces every row of its topic: whatever was held for them is superseded.
            let held = &mut self.held;
            self.slots.retain(|(held_topic, _), slot| {
                let same = &**held_topic == topic;
                if same {
                    held[*slot] = None;
                }
                !same
            });
        }
        let event = event();
        let row = (Arc::clone(&event.topic), row_of(payload));
        if let Some(&slot) = self.slots.get(&row) {
            self.held[slot] = None;
        }
        self.slots.insert(row, self.held.len());
        self.held.push(Some(event));
        self.bytes += payload.json_len();
        if self.slots.len() >= MAX_PENDING || self.bytes >= MAX_HELD_BYTES {
            Offer::HeldFlushNow
        } else {
            Offer::Held
        }
    }

    /// The window ended: the held events to deliver, oldest first. When there are none the window goes
    /// quiet (the next event goes out at once); otherwise the caller re-arms the timer for the next window.
    pub(crate) fn end(&mut self) -> Vec<Held> {
        self.slots.clear();
        self.bytes = 0;
        let held: Vec<Held> = self.held.drain(..).flatten().collect();
        if held.is_empty() {
            self.armed = false;
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model(pk: u64, total: u64) -> Payload {
        let kwargs = json!({"action": "updated", "pk": pk, "data": {"total": total}});
        Payload::ArgsKwargs(vec![], serde_json::from_value(kwargs).unwrap_or_default())
    }

    fn held(id: Id, payload: &Payload) -> Held {
        Held {
            id,
            topic: Arc::from("models.shop.order"),
            payload: payload.clone(),
            publisher_details: Dict::new(),
            audience: Audience::default(),
        }
    }

    fn offer(window: &mut Window, id: Id, payload: Payload) -> Offer {
        window.offer(|| held(id, &payload), "models.shop.order", &payload, false)
    }

    #[test]
    fn newest_per_row_wins_and_a_quiet_window_delivers_at_once() {
        let mut window = Window::new(Duration::from_millis(100));
        assert_eq!(offer(&mut window, 1, model(1, 10)), Offer::DeliverAndArm);
        for (id, pk, total) in [(2, 1, 11), (3, 2, 20), (4, 1, 12), (5, 2, 21), (6, 3, 30)] {
            assert_eq!(offer(&mut window, id, model(pk, total)), Offer::Held);
        }
        let ids: Vec<Id> = window.end().iter().map(|h| h.id).collect();
        assert_eq!(
            ids,
            vec![4, 5, 6],
            "the newest of each row, in publication order"
        );
        assert!(
            window.end().is_empty(),
            "nothing held: the window goes quiet"
        );
        assert_eq!(offer(&mut window, 7, model(1, 13)), Offer::DeliverAndArm);
    }

    #[test]
    fn rows_are_per_topic_a_sync_clears_only_its_topic_and_private_events_flush_first() {
        let mut window = Window::new(Duration::from_millis(100));
        let on = |topic: &'static str, id: Id, payload: Payload| {
            let event = Held {
                topic: Arc::from(topic),
                ..held(id, &payload)
            };
            (event, payload)
        };
        let offer_on =
            |window: &mut Window, topic: &'static str, id: Id, payload: Payload, private: bool| {
                let (event, payload) = on(topic, id, payload);
                window.offer(|| event, topic, &payload, private)
            };
        offer_on(&mut window, "models.shop.order", 1, model(1, 1), false);
        offer_on(&mut window, "models.shop.order", 2, model(1, 2), false);
        offer_on(&mut window, "models.shop.fresh", 3, model(1, 9), false);
        let sync = json!({"action": "synced", "rows": []});
        let sync = Payload::ArgsKwargs(vec![], serde_json::from_value(sync).unwrap_or_default());
        offer_on(&mut window, "models.shop.fresh", 4, sync, false);
        assert_eq!(
            offer_on(&mut window, "models.shop.order", 5, model(1, 3), true),
            Offer::FlushThenDeliver
        );
        let ids: Vec<Id> = window.end().iter().map(|h| h.id).collect();
        assert_eq!(
            ids,
            vec![2, 4],
            "order 1's newest, and the sync that superseded fresh 1"
        );
    }

    #[test]
    fn a_window_holding_too_many_bytes_is_flushed_early() {
        let mut window = Window::new(Duration::from_millis(100));
        let big = Payload::Args(vec![json!("x".repeat(300 * 1024))]);
        assert_eq!(offer(&mut window, 1, big.clone()), Offer::DeliverAndArm);
        assert_eq!(offer(&mut window, 2, big.clone()), Offer::Held);
        assert_eq!(offer(&mut window, 3, big.clone()), Offer::Held);
        assert_eq!(offer(&mut window, 4, big.clone()), Offer::Held);
        assert_eq!(
            offer(&mut window, 5, big),
            Offer::HeldFlushNow,
            "over a MiB held"
        );
        assert_eq!(window.end().len(), 1, "only the newest plain event");
    }

    #[test]
    fn plain_events_keep_only_the_newest_and_a_sync_supersedes_rows() {
        let mut window = Window::new(Duration::from_millis(100));
        offer(&mut window, 1, Payload::Args(vec![json!(1)]));
        offer(&mut window, 2, Payload::Args(vec![json!(2)]));
        offer(&mut window, 3, Payload::Args(vec![json!(3)]));
        offer(&mut window, 4, model(1, 1));
        let sync = json!({"action": "synced", "rows": []});
        offer(
            &mut window,
            5,
            Payload::ArgsKwargs(vec![], serde_json::from_value(sync).unwrap_or_default()),
        );
        let ids: Vec<Id> = window.end().iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![5]);
    }
}

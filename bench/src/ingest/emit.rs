//! The emitting side of an ingest run: events stamped `[sequence, emit_ns, padding]`, sent through the
//! switchboard-emitter crate with a bounded number of `emit` / `emit_batch` calls in flight, in order.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use serde_json::json;
use switchboard_emitter::{EmitError, Emitter, Event, Receipt};

use crate::clock::now_ns;

/// What the emitter confirmed and refused.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Events the emitter confirmed (JSON-RPC: the gateway published them; ZeroMQ: handed to the
    /// socket; AMQP: RabbitMQ confirmed them).
    pub ok: u64,
    /// Events the emitter reported as failed.
    pub failed: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn failed(count: u64, error: &EmitError) -> Tally {
        Tally {
            ok: 0,
            failed: count,
            first_error: Some(error.to_string()),
        }
    }

    fn of(results: Vec<Result<Receipt, EmitError>>) -> Tally {
        let mut tally = Tally::default();
        for result in results {
            match result {
                Ok(_) => tally.ok += 1,
                Err(error) => tally.add(Tally::failed(1, &error)),
            }
        }
        tally
    }
}

/// How the events are handed to the emitter.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Events to emit (sequences 1..=events).
    pub events: u64,
    /// Events per `emit_batch` call; `None` emits one event per `emit` call.
    pub batch: Option<usize>,
    /// Calls in flight at once (at least 1).
    pub window: usize,
}

/// An `emit` or `emit_batch` call in flight.
type Call<'a> = Pin<Box<dyn Future<Output = Tally> + Send + 'a>>;

/// The benchmark event `sequence` on `topic`, stamped now.
pub(super) fn stamped(topic: &str, sequence: u64, padding: &str) -> Event {
    Event::new(topic).with_args(vec![json!(sequence), json!(now_ns()), json!(padding)])
}

/// Emits `plan.events` events on `topic` through `emitter` and returns the tally. Each call is polled
/// once as soon as it is made, which puts its events in the emitter's buffer, so events leave in
/// sequence order whatever the window; at most `plan.window` calls are in flight.
pub(super) async fn emit_all(emitter: &Emitter, topic: &str, padding: &str, plan: Plan) -> Tally {
    let mut tally = Tally::default();
    let mut inflight: VecDeque<Call<'_>> = VecDeque::with_capacity(plan.window);
    let per_call = plan.batch.unwrap_or(1).max(1) as u64;
    let mut next = 1;
    while next <= plan.events || !inflight.is_empty() {
        while inflight.len() < plan.window.max(1) && next <= plan.events {
            let count = per_call.min(plan.events - next + 1);
            let mut call: Call<'_> = match plan.batch {
                None => {
                    let event = stamped(topic, next, padding);
                    Box::pin(async move {
                        match emitter.emit(event).await {
                            Ok(_) => Tally {
                                ok: 1,
                                ..Tally::default()
                            },
                            Err(error) => Tally::failed(1, &error),
                        }
                    })
                }
                Some(_) => {
                    let events = (next..next + count)
                        .map(|sequence| stamped(topic, sequence, padding))
                        .collect();
                    Box::pin(async move {
                        match emitter.emit_batch(events).await {
                            Ok(results) => Tally::of(results),
                            Err(error) => Tally::failed(count, &error),
                        }
                    })
                }
            };
            next += count;
            match poll_once(&mut call).await {
                Poll::Ready(done) => tally.add(done),
                Poll::Pending => inflight.push_back(call),
            }
        }
        // The emitter confirms in buffer order, so the oldest call finishes first.
        if let Some(oldest) = inflight.front_mut() {
            let done = oldest.await;
            inflight.pop_front();
            tally.add(done);
        }
    }
    tally
}

/// Polls `call` once (enqueuing its events) without waiting for it.
async fn poll_once(call: &mut Call<'_>) -> Poll<Tally> {
    std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
}

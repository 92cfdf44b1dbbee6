//! The publisher side of a flow run: one connection sending the benchmark events, as fast as the socket
//! takes them or at a fixed rate, with acknowledge on the last one.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::client::{publisher_buffers, Connection, Target, STEP_TIMEOUT};
use crate::clock::now_ns;
use crate::wire::{code, EventPayload, Serializer};

/// Most PUBLISH frames written per flush when publishing as fast as possible.
const BATCH: u64 = 64;

/// What the publisher did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// Clock reading just before the first PUBLISH.
    pub first_ns: u64,
    /// Clock reading after the last PUBLISH was flushed.
    pub last_ns: u64,
    /// Events sent.
    pub sent: u64,
}

/// Connects, joins and publishes `events` events of `payload` (at `rate` per second when given), then
/// waits for the PUBLISHED of the last one.
pub async fn run(
    target: &Target,
    serializer: Serializer,
    payload: &EventPayload,
    events: u64,
    rate: Option<f64>,
) -> anyhow::Result<Published> {
    let mut connection = Connection::connect(target, serializer, None, publisher_buffers()).await?;
    connection.join().await?;
    let start = Instant::now();
    let first_ns = now_ns();
    let mut pending = 0;
    for sequence in 1..=events {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64((sequence - 1) as f64 / rate);
            if due > Instant::now() {
                if pending > 0 {
                    connection.flush().await?;
                    pending = 0;
                }
                tokio::time::sleep_until(due.into()).await;
            }
        }
        connection
            .feed(&payload.publish(sequence, sequence == events))
            .await?;
        pending += 1;
        if pending >= BATCH || sequence == events {
            connection.flush().await?;
            pending = 0;
        }
    }
    let last_ns = now_ns();
    wait_published(&mut connection, events).await?;
    connection.close().await;
    Ok(Published {
        first_ns,
        last_ns,
        sent: events,
    })
}

/// Waits for PUBLISHED of request `request`; an ERROR for any PUBLISH fails the run.
pub(crate) async fn wait_published(
    connection: &mut Connection,
    request: u64,
) -> anyhow::Result<()> {
    let wait = async {
        loop {
            let message = connection.recv().await?;
            match message.get(0).and_then(Value::as_u64) {
                Some(code::PUBLISHED)
                    if message.get(1).and_then(Value::as_u64) == Some(request) =>
                {
                    return Ok(())
                }
                Some(code::ERROR | code::ABORT) => bail!("gateway refused a PUBLISH: {message}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("no PUBLISHED for the last event"))?
}

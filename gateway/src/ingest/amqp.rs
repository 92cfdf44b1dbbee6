//! AMQP 0-9-1 ingestion (RabbitMQ): consumes `[ingest.amqp].queue`, bound to the topic exchange
//! `[ingest.amqp].exchange`, with manual acks. A delivery is acked only after the router took the event;
//! a malformed or badly signed one is rejected without requeue, which RabbitMQ dead-letters to
//! `<queue>.dead-letter`. On shutdown, deliveries not yet taken stay unacked and are redelivered to the
//! next gateway. A lost broker connection is retried with backoff; the topology is declared again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use switchboard_config::AmqpConfig;
use switchboard_emitter::transport::amqp::Topology;
use switchboard_emitter::{Verifier, AMQP_SIGNATURE_HEADER};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::publish::Publisher;
use super::signed::ingest;

/// Deliveries RabbitMQ may have in flight to us, unacked (bounds the gateway's memory for AMQP).
pub const PREFETCH: u16 = 256;
/// Most deliveries taken before their (one, `multiple`) ack is sent.
const ACK_BATCH: usize = 64;
/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At start, how long the backlog is held while the router has no subscription at all: events consumed
/// then would reach nobody, while RabbitMQ keeps them durably for the subscribers that are reconnecting.
pub const HOLD_MAX: Duration = Duration::from_secs(30);
/// Once the first subscription exists, how long to wait for the other reconnecting subscribers.
pub const HOLD_GRACE: Duration = Duration::from_millis(500);

/// Why a consuming session with the broker ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Lapin(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    ConsumerEnded,
}

/// The running AMQP consumer.
pub struct AmqpIngest {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AmqpIngest {
    /// Starts consuming in the background; an unreachable broker is retried, never fatal.
    pub fn start(config: &AmqpConfig, publisher: Publisher, verifier: Arc<Verifier>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(config.clone(), publisher, verifier, stop.clone()));
        AmqpIngest { stop, task }
    }

    /// Stops consuming: the delivery in progress is finished (acked or rejected), the rest is left
    /// unacked for redelivery, and the connection is closed.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(
    config: AmqpConfig,
    publisher: Publisher,
    verifier: Arc<Verifier>,
    stop: CancellationToken,
) {
    let mut held = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = consume(&config, &publisher, &verifier, &stop, &mut held);
        match session.await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, url = %config.url, retry_in_ms = backoff.as_millis() as u64, "AMQP ingestion interrupted");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: declare, (once) hold the backlog until somebody listens, consume until
/// stopped (Ok) or the connection fails (Err).
async fn consume(
    config: &AmqpConfig,
    publisher: &Publisher,
    verifier: &Verifier,
    stop: &CancellationToken,
    held: &mut bool,
) -> Result<(), SessionError> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let topology = Topology {
        exchange: &config.exchange,
        queue: &config.queue,
    };
    topology.declare(&channel).await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    if !*held {
        hold_until_listened(publisher, stop).await;
        *held = true;
    }
    if stop.is_cancelled() {
        let _ = connection.close(200, "gateway shutting down".into()).await;
        return Ok(());
    }
    let mut consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            "switchboard-gateway".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %config.queue, exchange = %config.exchange, "AMQP ingestion consuming");
    // Acks are batched: one `multiple` ack covers every delivery taken since the last one, sent as
    // soon as no further delivery is ready (or every ACK_BATCH deliveries), and always before stopping.
    let mut unacked: Option<Delivery> = None;
    let mut taken = 0;
    loop {
        let ready = if taken < ACK_BATCH {
            consumer.next().now_or_never()
        } else {
            None
        };
        let delivery = match ready {
            Some(delivery) => delivery,
            None => {
                ack_up_to(&mut unacked).await?;
                taken = 0;
                tokio::select! {
                    _ = stop.cancelled() => {
                        // Closing the connection returns the deliveries not yet taken to the queue.
                        let _ = connection.close(200, "gateway shutting down".into()).await;
                        return Ok(());
                    }
                    delivery = consumer.next() => delivery,
                }
            }
        };
        match delivery {
            Some(Ok(delivery)) => {
                if let Some(delivery) = take(delivery, publisher, verifier, &topology).await? {
                    unacked = Some(delivery);
                    taken += 1;
                }
            }
            Some(Err(error)) => return Err(error.into()),
            None => return Err(SessionError::ConsumerEnded),
        }
    }
}

/// Acks every delivery up to and including `unacked` (all of them were taken by the router).
async fn ack_up_to(unacked: &mut Option<Delivery>) -> Result<(), lapin::Error> {
    if let Some(delivery) = unacked.take() {
        delivery.ack(BasicAckOptions { multiple: true }).await?;
    }
    Ok(())
}

async fn hold_until_listened(publisher: &Publisher, stop: &CancellationToken) {
    let deadline = tokio::time::Instant::now() + HOLD_MAX;
    let listened = || {
        publisher
            .router()
            .realms()
            .any(|realm| realm.broker().subscription_count() > 0)
    };
    while !listened() && tokio::time::Instant::now() < deadline && !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if listened() {
        tokio::time::sleep(HOLD_GRACE).await;
    }
}

/// Publishes one delivery and hands it back for acking, or rejects it to the dead-letter queue.
async fn take(
    delivery: Delivery,
    publisher: &Publisher,
    verifier: &Verifier,
    topology: &Topology<'_>,
) -> Result<Option<Delivery>, lapin::Error> {
    let signature = signature(&delivery);
    match ingest(verifier, publisher, signature.as_deref(), &delivery.data) {
        Ok(_) => Ok(Some(delivery)),
        Err(refusal) => {
            tracing::warn!(
                which = refusal.which(),
                routing_key = %delivery.routing_key,
                dead_letter_queue = %topology.dead_letter_queue(),
                "AMQP delivery refused, dead-lettered: {refusal}"
            );
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            Ok(None)
        }
    }
}

/// The `x-switchboard-signature` header as text (long or short string), if present.
fn signature(delivery: &Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(AMQP_SIGNATURE_HEADER)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => Some(String::new()),
    }
}

//! AMQP 0-9-1 ingestion (RabbitMQ): consumes `[ingest.amqp].queue`, bound to the topic exchange
//! `[ingest.amqp].exchange`, with manual acks. A delivery is acked only after the router took the event
//! (in a cluster: after the cluster's event log confirmed it; when the log cannot take it, the delivery
//! is nacked back to the queue).
//! A refused one (too large, badly signed, malformed) goes to `<queue>.dead-letter` with the reason:
//! a copy carrying the headers [`REFUSED_HEADER`] and [`REASON_HEADER`] is published (confirmed) to the
//! dead-letter exchange, then the original is acked; should that publish fail, the original is rejected
//! without requeue, which RabbitMQ dead-letters without our reason. On shutdown, deliveries not yet taken stay unacked and are redelivered to the
//! next gateway. A lost broker connection is retried with backoff; the topology is declared again.
//!
//! Memory: frames are at most [`FRAME_MAX`] (asked of the broker at connection, lapin refuses bigger
//! ones). lapin hands a delivery over only once its body is complete, so what one delivery can cost is
//! bounded by the broker's `max_message_size` (RabbitMQ's default: 128 MiB), and [`PREFETCH`] bounds
//! how many are in flight; a body over `[gateway] max_message_bytes` is dead-lettered as `too_large`
//! before its signature is checked or anything is parsed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{Channel, Confirmation, Connection, ConnectionProperties};
use switchboard_config::AmqpConfig;
use switchboard_wire::amqp::Topology;
use switchboard_wire::{Verifier, AMQP_SIGNATURE_HEADER};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::publish::PublishError;
use super::publish::Publisher;
use super::signed::{ingest, Refusal};
use crate::throttle;

/// Deliveries RabbitMQ may have in flight to us, unacked (bounds the gateway's memory for AMQP).
pub const PREFETCH: u16 = 256;
/// Header of a dead-lettered copy: the refusal's short tag (`too_large`, `invalid`, `not_json`, ...).
pub const REFUSED_HEADER: &str = "x-switchboard-refused";
/// Header of a dead-lettered copy: the refusal in words, as logged.
pub const REASON_HEADER: &str = "x-switchboard-reason";

/// Largest AMQP frame we accept (RabbitMQ's default; a URL's `frame_max` query overrides it).
pub const FRAME_MAX: u32 = 128 * 1024;
/// Most deliveries taken before their (one, `multiple`) ack is sent.
const ACK_BATCH: usize = 64;
/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At start, how long the backlog is held while the router has no subscription at all: events consumed
/// then would reach nobody, while RabbitMQ keeps them durably for the subscribers that are reconnecting.
pub const HOLD_MAX: Duration = Duration::from_secs(30);
/// Pause before a delivery the cluster's event log could not take goes back to the queue.
const REQUEUE_PAUSE: Duration = Duration::from_millis(200);
/// Once the first subscription exists, how long to wait for the other reconnecting subscribers.
pub const HOLD_GRACE: Duration = Duration::from_millis(500);

/// Why a consuming session with the broker ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Lapin(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    ConsumerEnded,
    #[error("bad URL: {0}")]
    Url(String),
}

/// What every delivery of one consumer is checked with.
struct Intake<'a> {
    publisher: &'a Publisher,
    verifier: &'a Verifier,
    topology: Topology<'a>,
    max_body: usize,
}

/// The running AMQP consumer.
pub struct AmqpIngest {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AmqpIngest {
    /// Starts consuming in the background; an unreachable broker is retried, never fatal.
    /// Bodies over `max_body` bytes (`[gateway] max_message_bytes`) are dead-lettered unread.
    pub fn start(
        config: &AmqpConfig,
        max_body: usize,
        publisher: Publisher,
        verifier: Arc<Verifier>,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            config.clone(),
            max_body,
            publisher,
            verifier,
            stop.clone(),
        ));
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
    max_body: usize,
    publisher: Publisher,
    verifier: Arc<Verifier>,
    stop: CancellationToken,
) {
    let mut held = false;
    // Doubling by hand: a retry crate (backon) would not make this loop shorter.
    let mut backoff = Duration::from_millis(100);
    loop {
        let intake = Intake {
            publisher: &publisher,
            verifier: &verifier,
            topology: Topology {
                exchange: &config.exchange,
                queue: &config.queue,
            },
            max_body,
        };
        let session = consume(&config, &intake, &stop, &mut held);
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
    intake: &Intake<'_>,
    stop: &CancellationToken,
    held: &mut bool,
) -> Result<(), SessionError> {
    let mut uri: AMQPUri = config.url.parse().map_err(SessionError::Url)?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    let connection = Connection::connect_uri(uri, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    // Confirms for the dead-letter copies (they do not change how consumed deliveries are acked).
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    intake.topology.declare(&channel).await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    // In a cluster the subscribers are on any node (and a node joins only once caught up): no hold.
    if !*held && !intake.publisher.router().is_clustered() {
        hold_until_listened(intake.publisher, stop).await;
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
                if let Some(delivery) = take(delivery, intake, &channel).await? {
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

/// Publishes one delivery, or dead-letters it with the reason; hands it back when it is to be acked.
async fn take(
    delivery: Delivery,
    intake: &Intake<'_>,
    channel: &Channel,
) -> Result<Option<Delivery>, lapin::Error> {
    let size = delivery.data.len();
    let refused = if size > intake.max_body {
        let reason = format!(
            "body of {size} bytes exceeds max_message_bytes of {}",
            intake.max_body
        );
        Some(("too_large", reason))
    } else {
        let signature = signature(&delivery);
        match ingest(
            intake.verifier,
            intake.publisher,
            signature.as_deref(),
            &delivery.data,
        )
        .await
        {
            Ok(_) => None,
            Err(Refusal::Publish(PublishError::Cluster(error))) => {
                // Clustered and the event log could not take it: nothing was accepted, so the delivery
                // goes back to the queue (after a pause, not to spin while RabbitMQ is overloaded).
                metrics::counter!("switchboard_ingest_refused_total", "transport" => "amqp", "reason" => "cluster_unavailable")
                    .increment(1);
                if let Some(suppressed) = throttle::allow("amqp_requeued", error.which()) {
                    tracing::warn!(suppressed, routing_key = %delivery.routing_key, "AMQP delivery requeued: {error}");
                }
                tokio::time::sleep(REQUEUE_PAUSE).await;
                delivery
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await?;
                return Ok(None);
            }
            Err(refusal) => Some((refusal.which(), refusal.to_string())),
        }
    };
    let Some((which, reason)) = refused else {
        metrics::counter!("switchboard_ingest_accepted_total", "transport" => "amqp").increment(1);
        return Ok(Some(delivery));
    };
    metrics::counter!("switchboard_ingest_refused_total", "transport" => "amqp", "reason" => which)
        .increment(1);
    let source = format!("{}/{which}", intake.topology.queue);
    if let Some(suppressed) = throttle::allow("amqp_refused", &source) {
        tracing::warn!(
            which,
            suppressed,
            routing_key = %delivery.routing_key,
            dead_letter_queue = %intake.topology.dead_letter_queue(),
            "AMQP delivery refused, dead-lettered: {reason}"
        );
    }
    if dead_letter(&delivery, which, &reason, intake, channel).await {
        return Ok(Some(delivery));
    }
    delivery
        .reject(BasicRejectOptions { requeue: false })
        .await?;
    Ok(None)
}

/// Publishes a copy of `delivery` to the dead-letter exchange with the refusal in its headers; true
/// once RabbitMQ confirmed it (the original may then be acked).
async fn dead_letter(
    delivery: &Delivery,
    which: &str,
    reason: &str,
    intake: &Intake<'_>,
    channel: &Channel,
) -> bool {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(REFUSED_HEADER.into(), AMQPValue::LongString(which.into()));
    headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    let properties = delivery
        .properties
        .clone()
        .with_headers(headers)
        .with_delivery_mode(2);
    let exchange = intake.topology.dead_letter_exchange();
    let published = channel
        .basic_publish(
            exchange.as_str().into(),
            delivery.routing_key.clone(),
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        )
        .await;
    match published {
        Ok(confirm) => matches!(confirm.await, Ok(Confirmation::Ack(_))),
        Err(_) => false,
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

//! The node's link to RabbitMQ: one connection holding the node's name (`node.rs`), a channel in
//! confirm mode that appends records in the order they were accepted (`log.rs`), and a channel that
//! consumes the stream and delivers (`consume.rs`); the name's channel also consumes the node queue
//! and sends heartbeats, requests and answers to the other nodes (`nodes.rs`). One task runs it all,
//! so appends and deliveries never race each other for the connection. A lost connection is retried
//! with backoff (doubling from 100 ms to 5 s, as AMQP ingestion does); while it is down appends are
//! refused, and consumption resumes right after the last offset delivered.
//!
//! Catching up: once consuming, the node appends a start marker with a random nonce; when it reads
//! that marker back it has read everything appended before it, so history and retained events are
//! rebuilt and the node may accept sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Acker, Connection, ConnectionProperties};
use lapin::{BasicProperties, Channel, ExchangeKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::consume::{self, Consumed, Cursor};
use super::log::{self, Append, AppendError};
use super::node::{self, NodeError};
use super::nodes::{self, Nodes, Outbound, Outgoing};
use super::record::{Marker, Record, VERSION};
use super::rpc;
use super::Settings;
use crate::router::Router;

/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most deliveries taken before their (one, `multiple`) ack is sent.
const ACK_BATCH: usize = 64;
/// Longest time a taken delivery waits for its ack when no more come.
const ACK_DELAY: Duration = Duration::from_millis(20);

/// Where the link stands, watched by whoever waits for the node to be ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting (again), or reading the stream's retained tail.
    Starting,
    /// The node has read its start marker back: history is rebuilt.
    CaughtUp,
    /// At start, another live node holds this node's name, or the stream exists with other arguments:
    /// the node must not run (the message says why).
    Refused(String),
}

/// Why one connection's life ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Lapin(#[from] lapin::Error),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("bad URL: {0}")]
    Url(String),
    #[error("RabbitMQ cancelled the stream consumer")]
    ConsumerEnded,
    #[error("RabbitMQ cancelled the node queue's consumer")]
    NodeConsumerEnded,
    #[error("{0}")]
    Mismatch(String),
}

/// What the link task owns.
pub(super) struct Link {
    pub(super) settings: Settings,
    pub(super) router: Arc<Router>,
    pub(super) up: Arc<AtomicBool>,
    pub(super) state: watch::Sender<LinkState>,
    pub(super) appends: mpsc::Receiver<Append>,
    pub(super) nodes: Arc<Nodes>,
    pub(super) outbound: Outbound,
    pub(super) stop: CancellationToken,
}

impl Link {
    /// Runs until stopped (or, at start, until the node's name is found taken).
    pub(super) async fn run(mut self) {
        let mut cursor = Cursor::default();
        let mut backoff = Duration::from_millis(100);
        let mut caught_up_once = false;
        let host = host_of(&self.settings.amqp_url).to_string();
        loop {
            let ended = self
                .connection(&mut cursor, &mut caught_up_once, &mut backoff)
                .await;
            self.up.store(false, Ordering::Release);
            metrics::gauge!("switchboard_cluster_connected").set(0.0);
            // This node's queue is gone with the connection, and what was on its way to it: calls to
            // and from other nodes end now (they hear of this node again when it is back).
            for node in self.nodes.forget_all() {
                rpc::forget_node(&self.router, &node);
            }
            // What waits to be sent was meant for the lost connection; from now on this node speaks as
            // a new incarnation, so the others end what they had in flight with the old one.
            let dropped = self.outbound.drain();
            if dropped > 0 {
                metrics::counter!("switchboard_cluster_node_messages_dropped_total")
                    .increment(dropped as u64);
            }
            self.nodes.renew();
            // Appends queued but not sent are refused: their publishers hear it now.
            while let Ok(append) = self.appends.try_recv() {
                log::count_refusal(&AppendError::Unavailable);
                let _ = append.done.send(Err(AppendError::Unavailable));
            }
            match ended {
                Ok(()) => return,
                Err(LinkError::Node(NodeError::Taken { .. }) | LinkError::Mismatch(_))
                    if !caught_up_once =>
                {
                    let Err(error) = ended else { return };
                    tracing::error!("{error}");
                    self.state
                        .send_replace(LinkState::Refused(error.to_string()));
                    return;
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        rabbitmq = %host,
                        stream = %self.settings.stream,
                        node = %self.settings.node,
                        retry_in_ms = backoff.as_millis() as u64,
                        "cluster link to RabbitMQ down: publishes are refused until it is back; retrying"
                    );
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: take the name, declare, consume and append until stopped (Ok) or failed.
    async fn connection(
        &mut self,
        cursor: &mut Cursor,
        caught_up_once: &mut bool,
        backoff: &mut Duration,
    ) -> Result<(), LinkError> {
        let settings = &self.settings;
        let uri: AMQPUri = settings.amqp_url.parse().map_err(LinkError::Url)?;
        // Named, so that an operator (or a test) finds the node's connection in RabbitMQ's tools.
        let properties = ConnectionProperties::default()
            .with_connection_name(connection_name(settings).as_str().into());
        let connection = tokio::select! {
            _ = self.stop.cancelled() => return Ok(()),
            connection = Connection::connect_uri(uri, properties) => connection?,
        };
        let control = connection.create_channel().await?;
        node::take_name(&control, &settings.stream, &settings.node).await?;
        consume::declare_stream(&control, settings)
            .await
            .map_err(|error| mismatch(error, settings))?;
        let mut node_queue = listen(&control, settings).await?;
        let exchange = nodes::exchange_name(&settings.stream);
        // Our callees to every node, and theirs asked for: messages lost while the link was down are
        // made good.
        self.nodes.hello(&self.router, None);
        let mut heartbeat = tokio::time::interval(nodes::HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let appending = connection.create_channel().await?;
        appending
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let consuming = connection.create_channel().await?;
        let mut consumer = consume::start(&consuming, settings, cursor).await?;
        let nonce = rand::random::<u64>();
        let marker = Record::Marker(Marker {
            v: VERSION,
            node: settings.node.clone(),
            nonce,
        });
        let (done, _confirmed) = oneshot::channel();
        log::publish(
            &appending,
            &settings.stream,
            Append {
                body: marker.encode(),
                done,
            },
        )
        .await?;
        self.up.store(true, Ordering::Release);
        metrics::gauge!("switchboard_cluster_connected").set(1.0);
        *backoff = Duration::from_millis(100);
        tracing::info!(
            stream = %settings.stream,
            node = %settings.node,
            resume_offset = ?cursor.next_offset(),
            "cluster link up: node name taken, consuming the event log"
        );
        let mut unacked: Option<Acker> = None;
        let mut taken = 0usize;
        let mut delivered = 0u64;
        loop {
            // Not biased: a flood of appends must not starve deliveries (or the other way round).
            tokio::select! {
                _ = self.stop.cancelled() => {
                    if let Some(acker) = unacked.take() {
                        let _ = acker.ack(BasicAckOptions { multiple: true }).await;
                    }
                    let _ = send(&control, &exchange, "", &self.nodes.leaving()).await;
                    let _ = connection.close(200, "gateway shutting down".into()).await;
                    return Ok(());
                }
                append = self.appends.recv() => match append {
                    Some(append) => append_batch(&appending, &settings.stream, append, &mut self.appends).await?,
                    None => return Ok(()),
                },
                delivery = consumer.next() => {
                    let delivery = match delivery {
                        Some(delivery) => delivery?,
                        None => return Err(LinkError::ConsumerEnded),
                    };
                    match consume::take(&self.router, cursor, &delivery) {
                        Consumed::Delivered => delivered += 1,
                        Consumed::Marker { node, nonce: seen } if node == settings.node && seen == nonce => {
                            if !*caught_up_once {
                                tracing::info!(events = delivered, "cluster: caught up with the event log (history and retained events rebuilt)");
                            } else {
                                tracing::info!(events = delivered, "cluster: consuming again, caught up");
                            }
                            *caught_up_once = true;
                            self.state.send_replace(LinkState::CaughtUp);
                        }
                        Consumed::Marker { .. } | Consumed::Skipped => {}
                    }
                    unacked = Some(delivery.acker);
                    taken += 1;
                    if taken >= ACK_BATCH {
                        if let Some(acker) = unacked.take() {
                            acker.ack(BasicAckOptions { multiple: true }).await?;
                        }
                        taken = 0;
                    }
                }
                outgoing = self.outbound.recv() => {
                    if let Some(first) = outgoing {
                        send_batch(&control, &exchange, first, &mut self.outbound).await?;
                    }
                }
                _ = heartbeat.tick() => {
                    send(&control, &exchange, "", &self.nodes.heartbeat()).await?;
                    self.nodes.resync(&self.router);
                    for node in self.nodes.expire() {
                        tracing::warn!(%node, "cluster: node silent for {:?}, forgotten with its callees and calls", nodes::EXPIRY);
                        rpc::forget_node(&self.router, &node);
                    }
                }
                message = node_queue.next() => {
                    let message = match message {
                        Some(message) => message?,
                        None => return Err(LinkError::NodeConsumerEnded),
                    };
                    if let Some((reply_to, answer)) = self.nodes.take(&self.router, &message.data) {
                        send(&control, "", &reply_to, &answer).await?;
                    }
                }
                _ = tokio::time::sleep(ACK_DELAY), if unacked.is_some() => {
                    if let Some(acker) = unacked.take() {
                        acker.ack(BasicAckOptions { multiple: true }).await?;
                    }
                    taken = 0;
                }
            }
        }
    }
}

/// Binds the node's queue to the cluster's fanout exchange and consumes it (no acks: a request lost
/// with a connection is answered "missing" by its asker's deadline).
async fn listen(channel: &Channel, settings: &Settings) -> Result<lapin::Consumer, lapin::Error> {
    let exchange = nodes::exchange_name(&settings.stream);
    let queue = node::queue_name(&settings.stream, &settings.node);
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            // Gone with the last node's queue: nothing is left behind when the cluster stops.
            ExchangeDeclareOptions {
                auto_delete: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_consume(
            queue.as_str().into(),
            format!("switchboard-node-{}", settings.node)
                .as_str()
                .into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Most node messages (or appends) handed to lapin before waiting for them to be written.
const SEND_BATCH: usize = 64;

/// `first` and what `next` has ready, up to [`SEND_BATCH`] in all, in order.
fn batch<T>(first: T, mut next: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < SEND_BATCH {
        match next() {
            Some(item) => batch.push(item),
            None => break,
        }
    }
    batch
}

/// Appends `first` and whatever else is queued (up to [`SEND_BATCH`]), in order, handed to lapin
/// before waiting (see [`send_batch`]). Every append runs to its end, so each waiter hears its own
/// outcome; Err (the first failure) when the channel failed.
async fn append_batch(
    channel: &Channel,
    stream: &str,
    first: Append,
    queued: &mut mpsc::Receiver<Append>,
) -> Result<(), lapin::Error> {
    let appends = batch(first, || queued.try_recv().ok())
        .into_iter()
        .map(|append| log::publish(channel, stream, append));
    futures_util::future::join_all(appends)
        .await
        .into_iter()
        .collect()
}

/// Publishes `first` and whatever else is queued (up to [`SEND_BATCH`]), all handed to lapin before
/// waiting: each publish waits for its frames to be written by lapin's I/O loop, so one at a time a
/// burst of calls across nodes would pay that hand-over per message. lapin queues a publish's frames
/// when its future is first polled, and `try_join_all` polls in order, so the order is kept.
async fn send_batch(
    channel: &Channel,
    exchange: &str,
    first: Outgoing,
    queued: &mut Outbound,
) -> Result<(), lapin::Error> {
    let batch = batch(first, || queued.try_recv());
    let publishes = batch.iter().map(|out| match &out.to {
        Some(queue) => send(channel, "", queue, &out.body),
        None => send(channel, exchange, "", &out.body),
    });
    futures_util::future::try_join_all(publishes).await?;
    Ok(())
}

/// Longest exchange or queue name AMQP carries (a short string).
const MAX_NAME: usize = 255;

/// Publishes one node message (not persistent: it matters only to live nodes). A name AMQP cannot
/// carry is skipped (lapin would panic on it): names come from checked node names, this is the last
/// guard.
async fn send(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
) -> Result<(), lapin::Error> {
    if exchange.len() > MAX_NAME || routing_key.len() > MAX_NAME {
        metrics::counter!("switchboard_cluster_node_messages_dropped_total").increment(1);
        tracing::warn!(
            bytes = routing_key.len().max(exchange.len()),
            "cluster: a node message for a queue name longer than AMQP allows was dropped"
        );
        return Ok(());
    }
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_content_type("application/json".into()),
        )
        .await?;
    Ok(())
}

/// AMQP reply code of a declaration whose arguments differ from the existing queue's.
const PRECONDITION_FAILED: u16 = 406;

/// A stream declared with other arguments than this node's is a configuration mismatch between nodes,
/// said as such (other failures stay broker errors, retried).
fn mismatch(error: lapin::Error, settings: &Settings) -> LinkError {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == PRECONDITION_FAILED => {
            LinkError::Mismatch(format!(
                "stream {:?} exists with other arguments than this node's [cluster] max_age_s = {} and max_bytes = {} \
                 (every node of a cluster needs the same; RabbitMQ said: {})",
                settings.stream,
                settings.max_age_s,
                settings.max_bytes,
                amqp.get_message()
            ))
        }
        _ => LinkError::Lapin(error),
    }
}

/// The name RabbitMQ shows for a node's connection: `switchboard-cluster <stream> <node>`.
pub fn connection_name(settings: &Settings) -> String {
    format!("switchboard-cluster {} {}", settings.stream, settings.node)
}

/// The host part of an AMQP URL, for logs (the URL may hold a password).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn logs_never_show_the_password() {
        assert_eq!(
            host_of("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "127.0.0.1:5672/%2f"
        );
        assert_eq!(host_of("amqp://127.0.0.1:1/"), "127.0.0.1:1/");
    }
}

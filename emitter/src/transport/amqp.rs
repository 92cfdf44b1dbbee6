//! AMQP 0-9-1 (RabbitMQ) with publisher confirms: each event is published persistent and mandatory to
//! the topic exchange, routing key = topic, signature in the `x-switchboard-signature` header; a receipt
//! means RabbitMQ has it in the durable queue. [`Topology`] (from `switchboard-wire`) is the
//! exchange/queue/dead-letter layout both the emitter and the gateway declare, so that their declarations
//! always agree.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use super::{Receipt, SendError};
use crate::event::Event;
use crate::signing::{Signer, AMQP_SIGNATURE_HEADER};
use crate::EmitError;

pub use switchboard_wire::amqp::Topology;

/// Events published per round before their confirms are awaited.
pub const MAX_BATCH: usize = 256;

/// The AMQP transport; connects lazily and again after the broker went away.
pub struct AmqpTransport {
    url: String,
    exchange: String,
    queue: String,
    signer: Signer,
    connected: Option<(Connection, Channel)>,
}

impl AmqpTransport {
    /// A transport to the broker at `url`, publishing to `exchange` (whose gateway consumes `queue`).
    pub fn new(url: &str, exchange: &str, queue: &str, signer: Signer) -> Self {
        AmqpTransport {
            url: url.to_string(),
            exchange: exchange.to_string(),
            queue: queue.to_string(),
            signer,
            connected: None,
        }
    }

    async fn channel(&mut self) -> Result<Channel, String> {
        if let Some((connection, channel)) = &self.connected {
            if connection.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        self.connected = None;
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(|e| format!("cannot connect to RabbitMQ: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Topology {
            exchange: &self.exchange,
            queue: &self.queue,
        }
        .declare(&channel)
        .await
        .map_err(|e| format!("declaring the exchange and queues: {e}"))?;
        self.connected = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes `events` and waits for their confirms; returns the confirmed prefix, or an error when
    /// none was confirmed. Events after the first failure may reach RabbitMQ and be sent again
    /// (at-least-once: give events an `id` when duplicates matter).
    pub async fn send(
        &mut self,
        events: &[&Event],
    ) -> Result<Vec<Result<Receipt, EmitError>>, SendError> {
        let channel = self.channel().await.map_err(SendError::Retry)?;
        let mut confirms = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            let body = event.to_json();
            let mut headers = FieldTable::default();
            headers.insert(
                AMQP_SIGNATURE_HEADER.into(),
                AMQPValue::LongString(LongString::from(self.signer.sign(&body))),
            );
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(headers);
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            match channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    event.topic.as_str().into(),
                    options,
                    &body,
                    properties,
                )
                .await
            {
                Ok(confirm) => confirms.push(confirm),
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        let mut receipts = Vec::with_capacity(confirms.len());
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => receipts.push(Ok(Receipt { publication: None })),
                Ok(Confirmation::Ack(Some(_))) => {
                    failure = Some(format!(
                        "RabbitMQ could not route the event: no queue bound to exchange {}",
                        self.exchange
                    ));
                    break;
                }
                Ok(Confirmation::Nack(_)) => {
                    failure = Some("RabbitMQ refused the event (nack)".into());
                    break;
                }
                Ok(Confirmation::NotRequested) => {
                    failure = Some("publisher confirms are off on this channel".into());
                    break;
                }
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        match failure {
            Some(error) => {
                self.connected = None;
                if receipts.is_empty() {
                    Err(SendError::Retry(error))
                } else {
                    Ok(receipts)
                }
            }
            None => Ok(receipts),
        }
    }

    /// Closes the connection (every publish was already confirmed).
    pub async fn close(self) {
        if let Some((connection, _)) = self.connected {
            let _ = connection.close(200, "emitter closed".into()).await;
        }
    }
}

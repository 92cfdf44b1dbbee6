//! The AMQP 0-9-1 (RabbitMQ) names both sides agree on: the signature header
//! ([`crate::AMQP_SIGNATURE_HEADER`]) and [`Topology`], the exchange/queue/dead-letter layout that the
//! emitter's AMQP transport and the gateway's AMQP ingestion both declare, so that their declarations
//! always agree. `Topology::declare` needs lapin and is behind this crate's `amqp` feature.

#[cfg(feature = "amqp")]
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
#[cfg(feature = "amqp")]
use lapin::types::{AMQPValue, FieldTable};
#[cfg(feature = "amqp")]
use lapin::{Channel, ExchangeKind};

/// The broker-side layout: a durable topic exchange; a durable queue bound to it for every routing key,
/// whose rejected messages go to a dead-letter exchange and queue (named after them, `.dead-letter`).
#[derive(Debug, Clone, Copy)]
pub struct Topology<'a> {
    /// The topic exchange events are published to.
    pub exchange: &'a str,
    /// The queue the gateway consumes.
    pub queue: &'a str,
}

impl Topology<'_> {
    /// Name of the dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.exchange)
    }

    /// Name of the dead-letter queue, where refused deliveries wait for an operator.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.queue)
    }

    #[cfg(feature = "amqp")]
    /// Declares everything (idempotent: the same declaration again is a no-op for RabbitMQ).
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let dlx = self.dead_letter_exchange();
        let dlq = self.dead_letter_queue();
        channel
            .exchange_declare(
                self.exchange.into(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                dlx.as_str().into(),
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(dlq.as_str().into(), durable_queue, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                dlq.as_str().into(),
                dlx.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
        channel
            .queue_declare(self.queue.into(), durable_queue, arguments)
            .await?;
        channel
            .queue_bind(
                self.queue.into(),
                self.exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

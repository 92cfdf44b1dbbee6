//! Consuming the cluster's event log: the stream is declared (durable, `x-queue-type: stream`, with
//! the configured retention), consumed from its first retained record at start and from right after
//! the last delivered offset on reconnection, and every event record is delivered to this node's
//! sessions through [`Realm::deliver`](crate::router::Realm::deliver), as the origin's own
//! consumption does: every node delivers the same publication ids in the same order.
//!
//! RabbitMQ may restart a stream consumer at the beginning of the chunk holding the asked offset, so
//! records before it are skipped here by their `x-stream-offset`; a bounded set of recent publication
//! ids is a second guard against delivering one event twice.

use std::collections::{HashSet, VecDeque};

use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};

use super::record::{from_epoch_ms, EventRecord, Marker, Record};
use super::Settings;
use crate::router::broker::Audience;
use crate::router::publish::Delivery;
use crate::router::Router;
use crate::throttle;
use crate::wamp::{Id, Payload};

/// Records RabbitMQ may have in flight to this node, unacknowledged: enough to keep the stream busy
/// across a round trip (acks are batched), small enough that what is in flight stays a few MiB with
/// ordinary events (at most `PREFETCH` x `max_message_bytes`).
pub const PREFETCH: u16 = 256;

/// Largest stream segment; RabbitMQ's default. Retention drops whole segments.
const MAX_SEGMENT_BYTES: u64 = 500_000_000;

/// Publication ids remembered to refuse a second delivery of the same event.
const RECENT_IDS: usize = 4096;

/// The arguments the stream is declared with; every node must declare the same ones.
pub fn stream_arguments(settings: &Settings) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    arguments.insert(
        "x-max-age".into(),
        AMQPValue::LongString(format!("{}s", settings.max_age_s).into()),
    );
    arguments.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(i64::try_from(settings.max_bytes).unwrap_or(i64::MAX)),
    );
    // A quarter of the retention, so that retention drops at most a quarter of the log at once.
    let segment = (settings.max_bytes / 4).clamp(1, MAX_SEGMENT_BYTES);
    arguments.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(i64::try_from(segment).unwrap_or(i64::MAX)),
    );
    arguments
}

/// Declares the stream (idempotent with the same arguments).
pub async fn declare_stream(channel: &Channel, settings: &Settings) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            settings.stream.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            stream_arguments(settings),
        )
        .await?;
    Ok(())
}

/// Starts consuming the stream: from its first retained record, or from `cursor`'s next offset.
pub async fn start(
    channel: &Channel,
    settings: &Settings,
    cursor: &Cursor,
) -> Result<Consumer, lapin::Error> {
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut arguments = FieldTable::default();
    let offset = match cursor.next {
        None => AMQPValue::LongString("first".into()),
        Some(next) => AMQPValue::LongLongInt(i64::try_from(next).unwrap_or(i64::MAX)),
    };
    arguments.insert("x-stream-offset".into(), offset);
    channel
        .basic_consume(
            settings.stream.as_str().into(),
            format!("switchboard-{}", settings.node).as_str().into(),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
}

/// Where consumption stands: the offset to resume from and the publication ids delivered lately.
#[derive(Debug, Default)]
pub struct Cursor {
    /// The offset after the last record taken; None before the first.
    next: Option<u64>,
    recent: HashSet<Id>,
    order: VecDeque<Id>,
}

impl Cursor {
    /// The offset consumption resumes from after a reconnection (None: the stream's first record).
    pub fn next_offset(&self) -> Option<u64> {
        self.next
    }

    /// Takes `offset`; false when it was already taken (a chunk replayed on resumption).
    fn advance(&mut self, offset: Option<u64>) -> bool {
        match (offset, self.next) {
            (Some(offset), Some(next)) if offset < next => false,
            (Some(offset), _) => {
                self.next = Some(offset + 1);
                true
            }
            // RabbitMQ always sets the offset; without one, rely on the id guard.
            (None, _) => true,
        }
    }

    /// Remembers `id`; false when it was delivered lately.
    fn first_time(&mut self, id: Id) -> bool {
        if !self.recent.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
        true
    }
}

/// What one consumed record was.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// An event, delivered to this node's sessions.
    Delivered,
    /// A start marker.
    Marker {
        /// The node that appended it.
        node: String,
        /// Its nonce.
        nonce: u64,
    },
    /// Already delivered, malformed, or for a realm this node does not serve: skipped.
    Skipped,
}

/// Delivers one consumed record to this node's sessions.
pub fn take(router: &Router, cursor: &mut Cursor, delivery: &AmqpDelivery) -> Consumed {
    if !cursor.advance(stream_offset(delivery)) {
        return Consumed::Skipped;
    }
    take_body(router, cursor, &delivery.data)
}

/// Delivers one record body (the part of [`take`] that does not need AMQP, for tests).
pub fn take_body(router: &Router, cursor: &mut Cursor, body: &[u8]) -> Consumed {
    match Record::decode(body) {
        Ok(Record::Marker(Marker { node, nonce, .. })) => Consumed::Marker { node, nonce },
        Ok(Record::Event(event)) => {
            if !cursor.first_time(event.publication) {
                metrics::counter!("switchboard_cluster_duplicates_skipped_total").increment(1);
                return Consumed::Skipped;
            }
            deliver(router, *event)
        }
        Err(error) => {
            bad_record("malformed", &error.to_string());
            Consumed::Skipped
        }
    }
}

fn deliver(router: &Router, event: EventRecord) -> Consumed {
    let Some(realm) = router.realm(&event.realm) else {
        bad_record(
            "unknown_realm",
            &format!(
                "realm {:?} (from node {:?}) is not served by this node; every node needs the same realms",
                event.realm, event.node
            ),
        );
        return Consumed::Skipped;
    };
    let payload = Payload::from(event.payload);
    let audience: Audience = event.audience;
    realm.deliver(Delivery {
        id: event.publication,
        topic: &event.topic,
        payload: &payload,
        audience,
        publisher_details: event.publisher,
        retain: event.retain,
        published: Some(from_epoch_ms(event.published_ms)),
    });
    metrics::counter!("switchboard_cluster_delivered_total").increment(1);
    Consumed::Delivered
}

/// Counts and logs (rate-limited) a record that cannot be delivered.
fn bad_record(which: &'static str, reason: &str) {
    metrics::counter!("switchboard_cluster_bad_records_total", "reason" => which).increment(1);
    if let Some(suppressed) = throttle::allow("cluster_bad_record", which) {
        tracing::warn!(suppressed, "cluster log record skipped: {reason}");
    }
}

/// The record's stream offset, from the `x-stream-offset` header RabbitMQ sets on every delivery.
fn stream_offset(delivery: &AmqpDelivery) -> Option<u64> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get("x-stream-offset")? {
        AMQPValue::LongLongInt(offset) => u64::try_from(*offset).ok(),
        AMQPValue::LongInt(offset) => u64::try_from(*offset).ok(),
        AMQPValue::LongUInt(offset) => Some(u64::from(*offset)),
        AMQPValue::Timestamp(offset) => Some(*offset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_already_taken_are_skipped() {
        let mut cursor = Cursor::default();
        assert!(cursor.advance(Some(10)));
        assert!(cursor.advance(Some(11)));
        assert!(!cursor.advance(Some(5)), "a replayed chunk");
        assert!(!cursor.advance(Some(11)));
        assert!(cursor.advance(Some(12)));
        assert_eq!(cursor.next, Some(13));
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut cursor = Cursor::default();
        assert!(cursor.first_time(1));
        assert!(!cursor.first_time(1));
        for id in 2..=(RECENT_IDS as u64 + 1) {
            assert!(cursor.first_time(id));
        }
        assert_eq!(cursor.recent.len(), RECENT_IDS);
        assert!(cursor.first_time(1), "forgotten after RECENT_IDS others");
    }

    fn router() -> Router {
        let config = switchboard_config::Config::from_toml_str(
            "[[realms]]\nname = \"realm1\"\n[[realms.history]]\nuri = \"app.\"\nmatch = \"prefix\"\n",
            "test.toml",
        )
        .expect("config");
        Router::new(&config)
    }

    fn record(realm: &str, publication: Id) -> Vec<u8> {
        let now = super::super::record::epoch_ms(std::time::SystemTime::now());
        record_at(realm, publication, now)
    }

    fn record_at(realm: &str, publication: Id, published_ms: u64) -> Vec<u8> {
        Record::Event(Box::new(EventRecord {
            v: super::super::record::VERSION,
            node: "n1".into(),
            realm: realm.into(),
            topic: "app.x".into(),
            publication,
            published_ms,
            payload: super::super::record::RecordPayload::Args(vec![serde_json::json!(1)]),
            audience: Audience::default(),
            publisher: crate::wamp::Dict::new(),
            retain: false,
        }))
        .encode()
    }

    #[test]
    fn records_are_delivered_once_and_bad_ones_skipped() {
        let router = router();
        let mut cursor = Cursor::default();
        assert_eq!(
            take_body(&router, &mut cursor, &record("realm1", 5)),
            Consumed::Delivered
        );
        assert_eq!(
            take_body(&router, &mut cursor, &record("realm1", 5)),
            Consumed::Skipped,
            "the same publication again"
        );
        assert_eq!(
            take_body(&router, &mut cursor, b"{not a record"),
            Consumed::Skipped
        );
        assert_eq!(
            take_body(&router, &mut cursor, &record("elsewhere", 6)),
            Consumed::Skipped,
            "a realm this node does not serve"
        );
        let realm = router.realm("realm1").expect("realm");
        let newest = realm
            .stored()
            .last_publication("app.x", std::time::Instant::now());
        assert_eq!(newest, Some(5), "recorded in history like a local event");
        // History's ttl_s (an hour by default) counts from the origin's time: a node catching up two
        // hours later delivers such a record but no longer keeps it.
        let router = self::router();
        let mut cursor = Cursor::default();
        let two_hours_ago =
            super::super::record::epoch_ms(std::time::SystemTime::now()) - 7_200_000;
        assert_eq!(
            take_body(&router, &mut cursor, &record_at("realm1", 7, two_hours_ago)),
            Consumed::Delivered
        );
        let realm = router.realm("realm1").expect("realm");
        let newest = realm
            .stored()
            .last_publication("app.x", std::time::Instant::now());
        assert_eq!(newest, None);
    }

    #[test]
    fn stream_arguments_follow_the_settings() {
        let settings = Settings {
            amqp_url: "amqp://x".into(),
            stream: "s".into(),
            node: "n".into(),
            max_age_s: 86_400,
            max_bytes: 1 << 30,
        };
        let arguments = stream_arguments(&settings);
        let inner = arguments.inner();
        assert_eq!(
            inner.get("x-max-age"),
            Some(&AMQPValue::LongString("86400s".into()))
        );
        assert_eq!(
            inner.get("x-stream-max-segment-size-bytes"),
            Some(&AMQPValue::LongLongInt(1 << 28))
        );
    }
}

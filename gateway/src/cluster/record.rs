//! One record of the cluster's event log, as it is stored in the RabbitMQ stream: an accepted event with
//! what every node needs to deliver it exactly as its origin would have (black/white lists, the
//! publisher excluded by `exclude_me`, the details `disclose_me` discloses, `retain`), or a start marker.
//!
//! The encoding is JSON, written once by the node that accepts the event: the payload already is JSON
//! (WAMP JSON/MessagePack arguments and ingested events are JSON values), records are read by Rust nodes
//! only at the rate of the stream, and a human can read a record with `rabbitmq-streams` tools when
//! something goes wrong. A record carries a version `v`; fields it does not know are ignored, so a newer
//! node may add some. A record that does not decode is skipped, counted and logged, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::router::broker::Audience;
use crate::wamp::{Dict, Id, Payload};

/// The record format this build writes and reads.
pub const VERSION: u32 = 1;

/// Why a record read from the stream cannot be delivered.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body is not a JSON record of a known kind, or a field has the wrong type.
    #[error("malformed record: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The record was written by a node with a newer format this node cannot read.
    #[error("record version {0} is not readable by this node (it reads version {VERSION})")]
    Version(u32),
}

/// A record of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// An accepted event, delivered by every node.
    Event(Box<EventRecord>),
    /// Appended by a starting (or reconnecting) node: once it reads its own marker back, it has read
    /// everything appended before, so it has caught up.
    Marker(Marker),
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// The node that accepted it (for logs).
    pub node: String,
    /// The realm it was published in.
    pub realm: String,
    /// The concrete topic.
    pub topic: String,
    /// The publication id its origin assigned (and answered the publisher with).
    pub publication: Id,
    /// When the origin accepted it, in milliseconds since the Unix epoch (history's `timestamp`, and the
    /// start of its `ttl_s`, the same on every node).
    pub published_ms: u64,
    /// The event's arguments.
    #[serde(default)]
    pub payload: RecordPayload,
    /// Who may receive it: black/white lists and the publisher's session when `exclude_me`.
    #[serde(default, skip_serializing_if = "Audience::is_everyone")]
    pub(crate) audience: Audience,
    /// `publisher`, `publisher_authid`, `publisher_authrole` when the publisher asked `disclose_me`.
    #[serde(default, skip_serializing_if = "Dict::is_empty")]
    pub publisher: Dict,
    /// PUBLISH option `retain`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain: bool,
}

/// A start marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// The node that appended it.
    pub node: String,
    /// Random, so that the node recognizes its own marker of this start.
    pub nonce: u64,
}

/// The arguments of an event, as WAMP carries them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordPayload {
    /// No arguments.
    #[default]
    Empty,
    /// Positional arguments only.
    Args(Vec<Value>),
    /// Positional and keyword arguments.
    ArgsKwargs(Vec<Value>, Dict),
    /// Payload transparency: an opaque value.
    Transparent(Value),
}

impl From<&Payload> for RecordPayload {
    fn from(payload: &Payload) -> Self {
        match payload {
            Payload::Empty => RecordPayload::Empty,
            Payload::Args(args) => RecordPayload::Args(args.clone()),
            Payload::ArgsKwargs(args, kwargs) => {
                RecordPayload::ArgsKwargs(args.clone(), kwargs.clone())
            }
            Payload::Transparent(value) => RecordPayload::Transparent(value.clone()),
        }
    }
}

impl From<Payload> for RecordPayload {
    fn from(payload: Payload) -> Self {
        match payload {
            Payload::Empty => RecordPayload::Empty,
            Payload::Args(args) => RecordPayload::Args(args),
            Payload::ArgsKwargs(args, kwargs) => RecordPayload::ArgsKwargs(args, kwargs),
            Payload::Transparent(value) => RecordPayload::Transparent(value),
        }
    }
}

impl From<RecordPayload> for Payload {
    fn from(payload: RecordPayload) -> Self {
        match payload {
            RecordPayload::Empty => Payload::Empty,
            RecordPayload::Args(args) => Payload::Args(args),
            RecordPayload::ArgsKwargs(args, kwargs) => Payload::ArgsKwargs(args, kwargs),
            RecordPayload::Transparent(value) => Payload::Transparent(value),
        }
    }
}

impl Record {
    /// The record as the bytes appended to the stream.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing maps and vectors of JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record consumed from the stream.
    pub fn decode(body: &[u8]) -> Result<Record, RecordError> {
        #[derive(Deserialize)]
        struct Versioned {
            v: u32,
        }
        let record = serde_json::from_slice::<Record>(body);
        match record {
            Ok(record) => {
                let v = match &record {
                    Record::Event(event) => event.v,
                    Record::Marker(marker) => marker.v,
                };
                if v > VERSION {
                    return Err(RecordError::Version(v));
                }
                Ok(record)
            }
            Err(error) => match serde_json::from_slice::<Versioned>(body) {
                // A newer record that this version cannot read says so, rather than "malformed".
                Ok(Versioned { v }) if v > VERSION => Err(RecordError::Version(v)),
                _ => Err(RecordError::Malformed(error)),
            },
        }
    }
}

/// Milliseconds since the Unix epoch of `time` (0 before it).
pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> EventRecord {
        let mut kwargs = Dict::new();
        kwargs.insert("pk".into(), json!(7));
        let mut publisher = Dict::new();
        publisher.insert("publisher".into(), json!(42));
        EventRecord {
            v: VERSION,
            node: "n1".into(),
            realm: "realm1".into(),
            topic: "models.app.item".into(),
            publication: 123_456,
            published_ms: 1_700_000_000_000,
            payload: RecordPayload::ArgsKwargs(vec![json!("a")], kwargs),
            audience: Audience {
                exclude_session: Some(42),
                eligible: Some(vec![1, 2]),
                ..Audience::default()
            },
            publisher,
            retain: true,
        }
    }

    #[test]
    fn an_event_record_round_trips() {
        let record = Record::Event(Box::new(event()));
        let decoded = Record::decode(&record.encode()).expect("decodes");
        assert_eq!(decoded, record);
    }

    #[test]
    fn a_plain_event_record_is_small_and_readable() {
        let record = Record::Event(Box::new(EventRecord {
            payload: RecordPayload::Args(vec![json!(1)]),
            audience: Audience::default(),
            publisher: Dict::new(),
            retain: false,
            ..event()
        }));
        let text = String::from_utf8(record.encode()).expect("utf-8");
        assert_eq!(
            text,
            r#"{"kind":"event","v":1,"node":"n1","realm":"realm1","topic":"models.app.item","publication":123456,"published_ms":1700000000000,"payload":{"args":[1]}}"#
        );
    }

    #[test]
    fn a_marker_round_trips() {
        let record = Record::Marker(Marker {
            v: VERSION,
            node: "n2".into(),
            nonce: 99,
        });
        assert_eq!(Record::decode(&record.encode()).expect("decodes"), record);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"{}",
            b"{\"kind\":\"event\"}",
            b"{\"kind\":\"nope\",\"v\":1}",
            b"{\"kind\":\"event\",\"v\":1,\"node\":\"n\",\"realm\":\"r\",\"topic\":\"t\",\"publication\":-1,\"published_ms\":0}",
            b"{\"kind\":\"event\",\"v\":1,\"node\":\"n\",\"realm\":\"r\",\"topic\":\"t\",\"publication\":1,\"published_ms\":0,\"payload\":{\"args\":5}}",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(Record::decode(body), Err(RecordError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_newer_record_says_so() {
        let body = br#"{"kind":"event","v":2,"something":"new"}"#;
        assert!(matches!(Record::decode(body), Err(RecordError::Version(2))));
        let mut newer = event();
        newer.v = 3;
        let body = Record::Event(Box::new(newer)).encode();
        assert!(matches!(
            Record::decode(&body),
            Err(RecordError::Version(3))
        ));
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_default() {
        let body = br#"{"kind":"event","v":1,"node":"n","realm":"r","topic":"t","publication":5,"published_ms":9,"later":true}"#;
        let Ok(Record::Event(event)) = Record::decode(body) else {
            panic!("decodes");
        };
        assert_eq!(event.payload, RecordPayload::Empty);
        assert!(event.audience.is_everyone());
        assert!(!event.retain);
    }

    #[test]
    fn epoch_ms_round_trips() {
        let time = from_epoch_ms(1_700_000_000_123);
        assert_eq!(epoch_ms(time), 1_700_000_000_123);
    }
}

//! Appending to the cluster's event log: [`Log`] is what a realm holds when clustered. An append is
//! queued to the node's link task (`link.rs`), which publishes the records to the stream in the order
//! they were accepted, on one channel with publisher confirms; the caller's [`Appending`] resolves once
//! RabbitMQ confirmed (or refused) that record. While RabbitMQ is away an append is refused at once:
//! nothing is accepted that the log does not hold, and nothing is silently dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::{mpsc, oneshot};

use super::record::{epoch_ms, EventRecord, Record, RecordPayload, VERSION};
use crate::router::publish::Delivery;
use crate::throttle;

/// Most appends waiting for the link task to publish them; past it, appends are refused as
/// [`AppendError::Busy`] (the broker is slower than publishers, memory must stay bounded).
pub const MAX_QUEUED_APPENDS: usize = 8192;

/// Why an event was not appended (and so not accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The node has no working connection to RabbitMQ (it is reconnecting).
    #[error("the cluster's event log (RabbitMQ) is unavailable; the event was not accepted, retry later")]
    Unavailable,
    /// More appends are waiting than [`MAX_QUEUED_APPENDS`].
    #[error("the cluster's event log is overloaded ({MAX_QUEUED_APPENDS} appends waiting); the event was not accepted, retry later")]
    Busy,
    /// RabbitMQ answered the append with a nack.
    #[error("RabbitMQ refused to append the event to the cluster's event log; the event was not accepted")]
    Nacked,
    /// The connection failed before RabbitMQ confirmed the append: it may or may not be in the log.
    #[error("the connection to RabbitMQ was lost before the append was confirmed; the event may not have been accepted")]
    Lost,
}

impl AppendError {
    /// A short tag for metrics.
    pub fn which(&self) -> &'static str {
        match self {
            AppendError::Unavailable => "unavailable",
            AppendError::Busy => "busy",
            AppendError::Nacked => "nacked",
            AppendError::Lost => "lost",
        }
    }
}

/// One record waiting to be published, and who waits for its confirmation.
#[derive(Debug)]
pub(super) struct Append {
    pub(super) body: Vec<u8>,
    pub(super) done: oneshot::Sender<Result<(), AppendError>>,
}

/// The append side of the log, shared by every realm of the node.
#[derive(Debug)]
pub struct Log {
    node: String,
    queue: mpsc::Sender<Append>,
    /// True while the link task has a channel to publish on.
    up: Arc<AtomicBool>,
}

/// An append on its way: resolves once RabbitMQ confirmed it, or with why it was not accepted.
#[derive(Debug)]
pub struct Appending(Result<oneshot::Receiver<Result<(), AppendError>>, AppendError>);

impl Appending {
    /// Waits for the stream's confirmation.
    pub async fn confirmed(self) -> Result<(), AppendError> {
        match self.0 {
            Err(error) => Err(error),
            Ok(receiver) => receiver.await.unwrap_or(Err(AppendError::Lost)),
        }
    }

    /// The refusal, when the append was refused before anything was sent.
    pub fn refused(&self) -> Option<&AppendError> {
        self.0.as_ref().err()
    }
}

impl Log {
    pub(super) fn new(node: String, queue: mpsc::Sender<Append>, up: Arc<AtomicBool>) -> Self {
        Log { node, queue, up }
    }

    /// Appends `delivery` of `realm` as one record (serialized here, once).
    pub fn append(&self, realm: &str, delivery: &Delivery<'_>) -> Appending {
        if !self.up.load(Ordering::Acquire) {
            return refused(AppendError::Unavailable, realm, delivery.topic);
        }
        let record = Record::Event(Box::new(EventRecord {
            v: VERSION,
            node: self.node.clone(),
            realm: realm.to_string(),
            topic: delivery.topic.to_string(),
            publication: delivery.id,
            published_ms: epoch_ms(delivery.published.unwrap_or_else(SystemTime::now)),
            payload: RecordPayload::from(delivery.payload),
            audience: delivery.audience.clone(),
            publisher: delivery.publisher_details.clone(),
            retain: delivery.retain,
        }));
        let (done, receiver) = oneshot::channel();
        let append = Append {
            body: record.encode(),
            done,
        };
        match self.queue.try_send(append) {
            Ok(()) => Appending(Ok(receiver)),
            Err(mpsc::error::TrySendError::Full(_)) => {
                refused(AppendError::Busy, realm, delivery.topic)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                refused(AppendError::Unavailable, realm, delivery.topic)
            }
        }
    }
}

/// Counts and logs (rate-limited) an append refused before it was sent.
fn refused(error: AppendError, realm: &str, topic: &str) -> Appending {
    count_refusal(&error);
    if let Some(suppressed) = throttle::allow("cluster_append_refused", error.which()) {
        tracing::warn!(realm, topic, suppressed, "event refused: {error}");
    }
    Appending(Err(error))
}

/// Counts a refused append by reason.
pub(super) fn count_refusal(error: &AppendError) {
    metrics::counter!("switchboard_cluster_appends_refused_total", "reason" => error.which())
        .increment(1);
}

/// Publishes one record to `stream` on `channel` (in confirm mode) and hands the confirmation to its
/// waiter from a task of its own, so that the next record is published without waiting. Err when the
/// channel failed (the caller reconnects); the waiter then hears [`AppendError::Lost`].
pub(super) async fn publish(
    channel: &Channel,
    stream: &str,
    append: Append,
) -> Result<(), lapin::Error> {
    let Append { body, done } = append;
    let published = channel
        .basic_publish(
            "".into(),
            stream.into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into()),
        )
        .await;
    let confirm = match published {
        Ok(confirm) => confirm,
        Err(error) => {
            count_refusal(&AppendError::Lost);
            let _ = done.send(Err(AppendError::Lost));
            return Err(error);
        }
    };
    tokio::spawn(async move {
        let outcome = match confirm.await {
            Ok(Confirmation::Ack(_)) => Ok(()),
            Ok(Confirmation::Nack(_)) => Err(AppendError::Nacked),
            // Not in confirm mode: cannot happen, the link selects confirms before publishing.
            Ok(Confirmation::NotRequested) => Ok(()),
            Err(_) => Err(AppendError::Lost),
        };
        match &outcome {
            Ok(()) => metrics::counter!("switchboard_cluster_appends_total").increment(1),
            Err(error) => {
                count_refusal(error);
                if let Some(suppressed) = throttle::allow("cluster_append_failed", error.which()) {
                    tracing::warn!(suppressed, "event not accepted: {error}");
                }
            }
        }
        let _ = done.send(outcome);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::broker::Audience;
    use crate::wamp::{Dict, Payload};

    fn delivery(payload: &Payload) -> Delivery<'_> {
        Delivery {
            id: 7,
            topic: "a.b",
            payload,
            audience: Audience::default(),
            publisher_details: Dict::new(),
            retain: false,
            published: None,
        }
    }

    #[tokio::test]
    async fn appends_are_refused_while_rabbitmq_is_away_and_queued_in_order_otherwise() {
        let (queue, mut appends) = mpsc::channel(2);
        let up = Arc::new(AtomicBool::new(false));
        let log = Log::new("n1".into(), queue, Arc::clone(&up));
        let payload = Payload::Args(vec![serde_json::json!(1)]);
        let refused = log.append("realm1", &delivery(&payload));
        assert_eq!(refused.refused(), Some(&AppendError::Unavailable));
        assert_eq!(refused.confirmed().await, Err(AppendError::Unavailable));

        up.store(true, Ordering::Release);
        let first = log.append("realm1", &delivery(&payload));
        let second = log.append("realm1", &delivery(&payload));
        assert!(first.refused().is_none() && second.refused().is_none());
        let busy = log.append("realm1", &delivery(&payload));
        assert_eq!(
            busy.refused(),
            Some(&AppendError::Busy),
            "the queue holds 2"
        );

        let taken = appends.recv().await.expect("queued");
        let Ok(Record::Event(event)) = Record::decode(&taken.body) else {
            panic!("an event record");
        };
        assert_eq!(
            (event.node.as_str(), event.realm.as_str(), event.publication),
            ("n1", "realm1", 7)
        );
        taken.done.send(Ok(())).expect("waiting");
        assert_eq!(first.confirmed().await, Ok(()));
        drop(appends);
        assert_eq!(
            second.confirmed().await,
            Err(AppendError::Lost),
            "never confirmed"
        );
    }
}

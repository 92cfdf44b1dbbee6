//! Node identity and liveness without a consensus of our own: a node holds the EXCLUSIVE, auto-delete
//! queue `<stream>.node.<name>` for as long as its connection to RabbitMQ lives. RabbitMQ refuses the
//! same declaration from any other connection (`RESOURCE_LOCKED`, 405) and deletes the queue when the
//! holder's connection closes or dies, so a name is unique among live nodes and freed by a dead one.
//! The queue also carries node-to-node requests (`nodes.rs`: management calls across the cluster).

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, ErrorKind};

/// AMQP reply code RabbitMQ answers when an exclusive queue is held by another connection.
const RESOURCE_LOCKED: u16 = 405;

/// Why this node could not take its name.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Another live node holds the name.
    #[error("node name {node:?} is taken: another live node of stream {stream:?} holds the queue {queue:?}; give every node its own [cluster] node name")]
    Taken {
        /// The name.
        node: String,
        /// The cluster's stream.
        stream: String,
        /// The node's queue.
        queue: String,
    },
    /// The broker failed otherwise.
    #[error(transparent)]
    Broker(#[from] lapin::Error),
}

/// The queue that holds `node`'s name in the cluster of `stream`.
pub fn queue_name(stream: &str, node: &str) -> String {
    format!("{stream}.node.{node}")
}

/// Declares the node's exclusive queue on `channel` (of the connection that must live as long as the
/// node holds its name).
pub async fn take_name(channel: &Channel, stream: &str, node: &str) -> Result<(), NodeError> {
    let queue = queue_name(stream, node);
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(_) => Ok(()),
        Err(error) if is_locked(&error) => Err(NodeError::Taken {
            node: node.to_string(),
            stream: stream.to_string(),
            queue,
        }),
        Err(error) => Err(NodeError::Broker(error)),
    }
}

fn is_locked(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == RESOURCE_LOCKED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_queue_is_named_after_the_stream_and_the_node() {
        assert_eq!(
            queue_name("switchboard.events", "node-1"),
            "switchboard.events.node.node-1"
        );
    }
}

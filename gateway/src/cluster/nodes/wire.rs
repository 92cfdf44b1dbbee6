//! The node messages' wire: JSON, one object per AMQP message, tagged by `kind` (and an RPC message by
//! `op`, see [`rpc`](crate::cluster::rpc)). What each says is in `nodes.rs`.

use serde::{Deserialize, Serialize};

use crate::cluster::rpc::Rpc;
use crate::wamp::Id;

/// The encoding's version; messages of another version are skipped.
pub const VERSION: u8 = 1;

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// [`VERSION`].
    pub v: u8,
    /// The sending node.
    pub node: String,
    /// Random per connection of the sending node to RabbitMQ: a node that restarted or reconnected
    /// (its queue, and what was on its way to it, lost) says another one, and the others forget its
    /// callees and its calls in flight, which would otherwise wait for answers that cannot come.
    #[serde(default)]
    pub incarnation: u64,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What a node says to the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// "I am alive."
    Heartbeat,
    /// "I am stopping": not to be waited for any more.
    Leaving,
    /// A management call to answer for this node.
    Request {
        /// The correlation id (unique per asking node).
        id: u64,
        /// The asker's node queue.
        reply_to: String,
        /// The call.
        query: Query,
    },
    /// One node's answer to request `id`.
    Answer {
        /// The request's correlation id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
    /// RPC across nodes.
    Rpc {
        /// What about.
        rpc: Rpc,
    },
}

/// A management call, as asked of every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Query {
    /// Joined sessions in `realm` (or every realm).
    SessionCount {
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// The sessions of `authid`.
    Sessions {
        /// The authenticated identity.
        authid: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// Who would receive an event on `topic`.
    Subscribers {
        /// The topic.
        topic: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// GOODBYE to every session of `authid`.
    Kick {
        /// The authenticated identity.
        authid: String,
        /// The GOODBYE reason URI.
        reason: String,
        /// The GOODBYE message.
        message: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
}

/// One session, as `sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The session id.
    pub session: Id,
    /// Its authenticated identity.
    pub authid: String,
    /// Its role.
    pub authrole: String,
    /// Its realm.
    pub realm: String,
}

/// One node's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `session_count`.
    Count(u64),
    /// `sessions`.
    Sessions(Vec<SessionEntry>),
    /// `subscribers`: session ids.
    Subscribers(Vec<Id>),
    /// `kick`: how many were closed.
    Kicked(u64),
    /// The node could not answer (it knows no such realm).
    Refused(String),
}

impl Message {
    /// The message's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a node message always serializes")
    }

    /// A message from its JSON; Err says why it is skipped.
    pub fn decode(body: &[u8]) -> Result<Message, String> {
        let message: Message = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if message.v != VERSION {
            return Err(format!(
                "version {} (this node speaks {VERSION})",
                message.v
            ));
        }
        // Answers go to the sender's queue, named after it: only a name a node could have is taken.
        switchboard_config::check_node_name(&message.node)?;
        Ok(message)
    }
}

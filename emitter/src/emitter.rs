//! The emitter: what web-app code holds to publish events. `emit` validates the event, puts it in a
//! bounded buffer and waits for the gateway's confirmation; one background task drains the buffer in
//! batches through the configured transport, retrying while the gateway is unreachable. A full buffer
//! is an immediate, explicit error: memory stays bounded and nothing is dropped silently.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_config::Config;
use switchboard_wire::uri::{self, MatchPolicy};
use tokio::sync::{mpsc, oneshot, watch};

#[cfg(not(feature = "jsonrpc"))]
use crate::builder::not_built;
use crate::builder::EmitterBuilder;
use crate::event::{Event, EventError};
use crate::model_emitter::ModelEmitter;
use crate::ticket::TicketKey;
#[cfg(feature = "jsonrpc")]
use crate::transport::jsonrpc::JsonRpcCalls;
use crate::transport::Receipt;
use crate::worker::{Job, LastError};
use crate::EmitError;

/// Publishes events to the gateway. Cheap to clone; clones share one buffer and background task, which
/// ends once every clone is dropped and the buffer is empty.
#[derive(Debug, Clone)]
pub struct Emitter {
    pub(crate) jobs: mpsc::Sender<Job>,
    /// Becomes true once the background task has sent everything and closed the transport.
    pub(crate) closed: watch::Receiver<bool>,
    pub(crate) last_error: LastError,
    pub(crate) capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) model_prefix: Arc<str>,
    pub(crate) auto_id: bool,
    pub(crate) tickets: TicketKey,
    /// The gateway's JSON-RPC methods other than publishing, when an endpoint is known.
    #[cfg(feature = "jsonrpc")]
    pub(crate) calls: Option<Arc<JsonRpcCalls>>,
    /// Whether an endpoint was given (this build cannot call it).
    #[cfg(not(feature = "jsonrpc"))]
    pub(crate) has_jsonrpc_endpoint: bool,
}

impl Emitter {
    /// A builder for an emitter configured in code.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// An emitter configured by the shared `switchboard.toml` at `path`.
    pub fn from_config(path: impl AsRef<Path>) -> Result<Emitter, EmitError> {
        let config = Config::load(path.as_ref())?;
        EmitterBuilder::from_config(&config)?.build()
    }

    /// Emits one event and waits until the gateway took it (or the timeout passes).
    pub async fn emit(&self, event: Event) -> Result<Receipt, EmitError> {
        event.validate()?;
        let event = self.with_id(event);
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .try_send(Job { event, reply })
            .map_err(|error| self.queue_error(error))?;
        self.wait(outcome).await
    }

    /// Emits several events; they are buffered together (all or none) and confirmed one by one. The
    /// outer error means nothing was sent; the inner results are per event, in order.
    pub async fn emit_batch(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Receipt, EmitError>>, EmitError> {
        for event in &events {
            event.validate()?;
        }
        let events: Vec<Event> = events.into_iter().map(|e| self.with_id(e)).collect();
        let permits = match self.jobs.try_reserve_many(events.len()) {
            Ok(permits) => permits,
            Err(mpsc::error::TrySendError::Full(())) => {
                return Err(EmitError::BufferFull {
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(())) => return Err(EmitError::Closed),
        };
        let mut outcomes = Vec::with_capacity(events.len());
        for (permit, event) in permits.zip(events) {
            let (reply, outcome) = oneshot::channel();
            permit.send(Job { event, reply });
            outcomes.push(outcome);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            results.push(self.wait(outcome).await);
        }
        Ok(results)
    }

    /// Sends what is still buffered, closes the transport (ZeroMQ lingers briefly so that queued
    /// messages reach the wire) and returns; waits at most the emitter's timeout. The background task
    /// ends only once every clone of this emitter is gone, so drop the others first.
    pub async fn close(self) -> Result<(), EmitError> {
        let Emitter {
            jobs,
            mut closed,
            timeout,
            last_error,
            ..
        } = self;
        drop(jobs);
        let finished = tokio::time::timeout(timeout, closed.wait_for(|done| *done))
            .await
            .is_ok();
        if finished {
            Ok(())
        } else {
            Err(EmitError::Timeout {
                waited: timeout,
                last_error: last_error.get(),
            })
        }
    }

    /// Model-change events for `model` (`<app>.<model>`, e.g. `shop.order`).
    pub fn model(&self, model: impl Into<String>) -> ModelEmitter<'_> {
        ModelEmitter {
            emitter: self,
            model: model.into(),
            eligible_authid: None,
        }
    }

    /// Mints a connection ticket for `authid` with `roles`, valid for `ttl`: hand it to the browser,
    /// which joins with WAMP ticket authentication (authmethods `["ticket"]`, this authid). The ticket
    /// is signed with the shared secret and holds no secret itself.
    pub fn ticket<S: Into<String>>(
        &self,
        authid: impl Into<String>,
        roles: impl IntoIterator<Item = S>,
        ttl: Duration,
    ) -> Result<String, EmitError> {
        Ok(self.tickets.mint(authid, roles, ttl)?)
    }

    /// The id of the newest publication the gateway stores for `topic` (its history), or `None` when
    /// it stores none: the signed JSON-RPC call `last_publication({"topic": topic})`, sent directly
    /// (not buffered) and waiting at most the emitter's timeout.
    ///
    /// It exists so that a page can render rows and then follow them live without missing a change:
    /// the web app reads this id *first*, then queries its database, and renders the rows together
    /// with the id; the browser's live collection subscribes and recovers the events published after
    /// that id. A change committed between the two reads is both in the rows and after the id, which
    /// is harmless: model events are idempotent (applying one twice leaves the same rows).
    ///
    /// It needs the gateway's JSON-RPC ingestion endpoint: the target's URL with the jsonrpc
    /// transport, otherwise `[ingest.jsonrpc]` of the configuration or
    /// [`EmitterBuilder::jsonrpc_endpoint`]; without one it fails with
    /// [`EmitError::NoJsonRpcEndpoint`]. A gateway that cannot be reached gives
    /// [`EmitError::Unreachable`]; one refusing the call (say, a bad signature)
    /// [`EmitError::Rejected`].
    pub async fn last_publication(&self, topic: &str) -> Result<Option<u64>, EmitError> {
        uri::validate(topic, MatchPolicy::Exact).map_err(|r| EventError::new("topic", r))?;
        #[cfg(feature = "jsonrpc")]
        {
            let calls = self.calls.as_ref().ok_or(EmitError::NoJsonRpcEndpoint {
                method: "last_publication",
            })?;
            calls.last_publication(topic).await
        }
        #[cfg(not(feature = "jsonrpc"))]
        {
            if self.has_jsonrpc_endpoint {
                Err(not_built("jsonrpc"))
            } else {
                Err(EmitError::NoJsonRpcEndpoint {
                    method: "last_publication",
                })
            }
        }
    }

    /// The topic prefix of model-change events.
    pub fn model_prefix(&self) -> &str {
        &self.model_prefix
    }

    /// Events waiting to be sent right now.
    pub fn buffered(&self) -> usize {
        self.capacity - self.jobs.capacity()
    }

    /// The event with a random idempotency key when it has none and auto ids are on.
    fn with_id(&self, mut event: Event) -> Event {
        if self.auto_id && event.id.is_none() {
            event.id = Some(format!("e-{}", hex::encode(rand::random::<[u8; 16]>())));
        }
        event
    }

    fn queue_error(&self, error: mpsc::error::TrySendError<Job>) -> EmitError {
        match error {
            mpsc::error::TrySendError::Full(_) => EmitError::BufferFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => EmitError::Closed,
        }
    }

    async fn wait(
        &self,
        outcome: oneshot::Receiver<Result<Receipt, EmitError>>,
    ) -> Result<Receipt, EmitError> {
        match tokio::time::timeout(self.timeout, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(EmitError::Closed),
            Err(_) => Err(EmitError::Timeout {
                waited: self.timeout,
                last_error: self.last_error.get(),
            }),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Verifier;
    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    /// A gateway for one JSON-RPC request: answers `result` to it and hands back the request's
    /// `X-Switchboard-Signature` header and body.
    async fn answer_once(result: Value) -> (String, JoinHandle<(Option<String>, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut received = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let read = socket.read(&mut chunk).await.expect("read");
                assert!(read > 0, "connection closed before a whole request");
                received.extend_from_slice(&chunk[..read]);
                let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
                let length = header(&head, "content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    break (head, received[end + 4..end + 4 + length].to_vec());
                }
            };
            let request: Value = serde_json::from_slice(&body).expect("a JSON request");
            let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
            let answer = serde_json::to_vec(&answer).expect("JSON");
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                answer.len()
            );
            socket
                .write_all(response.as_bytes())
                .await
                .expect("written");
            socket.write_all(&answer).await.expect("written");
            let _ = socket.shutdown().await;
            (header(&head, "x-switchboard-signature"), body)
        });
        (format!("http://{address}"), server)
    }

    /// The value of header `name` (lowercase) in a lowercased request head.
    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    }

    /// Checks one `last_publication` request the way the gateway does: signature, method, params.
    fn check_signed_request(signature: Option<&str>, body: &[u8], topic: &str) {
        assert_eq!(Verifier::new("s", 300).verify(signature, body), Ok(()));
        let forged = Verifier::new("not-s", 300).verify(signature, body);
        assert_eq!(forged.map_err(|e| e.which()), Err("invalid"));
        let request: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(request["method"], "last_publication");
        assert_eq!(request["params"], json!({"topic": topic}));
    }

    #[tokio::test]
    async fn last_publication_is_a_signed_call_answering_an_id_or_none() {
        for (answer, expected) in [
            (json!({"publication": 17}), Some(17)),
            (json!({"publication": null}), None),
        ] {
            let (url, server) = answer_once(answer).await;
            let emitter = Emitter::builder()
                .jsonrpc(url)
                .secret("s")
                .build()
                .expect("emitter");
            let publication = emitter.last_publication("models.shop.order").await;
            assert_eq!(publication.expect("answered"), expected);
            let (signature, body) = server.await.expect("server");
            check_signed_request(signature.as_deref(), &body, "models.shop.order");
        }
    }

    #[tokio::test]
    async fn last_publication_uses_the_configured_jsonrpc_endpoint_with_another_transport() {
        let (url, server) = answer_once(json!({"publication": 5})).await;
        let listen = url.trim_start_matches("http://");
        let config = Config::from_toml_str(
            &format!(
                "[security]\nsecret = \"s\"\n[emitter]\ntransport = \"zmq\"\n\
                 [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:1\"\n[ingest.jsonrpc]\nlisten = \"{listen}\"\n"
            ),
            "test.toml",
        )
        .expect("config");
        let emitter = EmitterBuilder::from_config(&config)
            .expect("builder")
            .build()
            .expect("emitter");
        assert_eq!(
            emitter
                .last_publication("models.shop.order")
                .await
                .expect("answered"),
            Some(5)
        );
        let (signature, body) = server.await.expect("server");
        check_signed_request(signature.as_deref(), &body, "models.shop.order");
    }

    #[tokio::test]
    async fn last_publication_without_a_jsonrpc_endpoint_says_what_it_needs() {
        let config = Config::from_toml_str(
            "[security]\nsecret = \"s\"\n[emitter]\ntransport = \"zmq\"\n\
             [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:1\"\n",
            "test.toml",
        )
        .expect("config");
        let from_config = EmitterBuilder::from_config(&config).expect("builder");
        let in_code = Emitter::builder().zmq("tcp://127.0.0.1:1").secret("s");
        for builder in [from_config, in_code] {
            let emitter = builder.build().expect("emitter");
            let error = emitter
                .last_publication("models.shop.order")
                .await
                .expect_err("no endpoint");
            assert!(
                matches!(
                    error,
                    EmitError::NoJsonRpcEndpoint {
                        method: "last_publication"
                    }
                ),
                "{error}"
            );
            let message = error.to_string();
            assert!(
                message
                    .contains("last_publication needs the gateway's JSON-RPC ingestion endpoint"),
                "{message}"
            );
            assert!(message.contains("[ingest.jsonrpc]"), "{message}");
        }
        // A topic the gateway would refuse is refused before any call; a gateway that is not there
        // is said to be unreachable.
        let emitter = Emitter::builder()
            .jsonrpc("http://127.0.0.1:1")
            .secret("s")
            .timeout(Duration::from_secs(5))
            .build()
            .expect("emitter");
        let error = emitter.last_publication("bad..topic").await;
        assert!(matches!(error, Err(EmitError::Invalid(_))), "{error:?}");
        let error = emitter.last_publication("models.shop.order").await;
        assert!(
            matches!(error, Err(EmitError::Unreachable { .. })),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn sync_sends_one_synced_event_with_every_row() {
        let (url, server) = answer_once(json!({"publication": 9})).await;
        let emitter = Emitter::builder()
            .jsonrpc(url)
            .secret("s")
            .auto_id(false)
            .build()
            .expect("emitter");
        let rows = [
            (1, json!({"status": "new"})),
            (2, json!({"status": "paid"})),
        ];
        let receipt = emitter
            .model("shop.order")
            .sync(rows.iter().map(|(pk, data)| (pk, data)))
            .await
            .expect("published");
        assert_eq!(receipt.publication, Some(9));
        let (signature, body) = server.await.expect("server");
        assert_eq!(
            Verifier::new("s", 300).verify(signature.as_deref(), &body),
            Ok(())
        );
        let request: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(request["method"], "publish");
        assert_eq!(
            request["params"],
            json!({"topic": "models.shop.order", "kwargs": {"action": "synced", "model": "shop.order",
                   "rows": [{"pk": 1, "status": "new"}, {"pk": 2, "status": "paid"}]}})
        );
    }

    #[tokio::test]
    async fn events_get_a_random_idempotency_key_unless_they_have_one_or_it_is_off() {
        let builder = Emitter::builder().jsonrpc("http://127.0.0.1:1").secret("s");
        let emitter = builder.clone().build().expect("emitter");
        let first = emitter.with_id(Event::new("a.b")).id.expect("an id");
        let second = emitter.with_id(Event::new("a.b")).id.expect("an id");
        assert!(first.starts_with("e-") && first.len() == 34, "{first}");
        assert_ne!(first, second);
        let own = emitter.with_id(Event::new("a.b").with_id("mine")).id;
        assert_eq!(own.as_deref(), Some("mine"));
        let ticket = emitter.ticket("alice", ["member"], Duration::from_secs(60));
        let claims = TicketKey::new("s").verify(&ticket.expect("ticket"), Some("alice"));
        assert_eq!(claims.expect("valid").roles, vec!["member".to_string()]);
        let off = builder.auto_id(false).build().expect("emitter");
        assert_eq!(off.with_id(Event::new("a.b")).id, None);
    }
}

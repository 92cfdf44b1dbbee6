//! The WebSocket opening handshake (RFC 6455 section 4.2.2) with WAMP subprotocol negotiation. Done here
//! rather than by axum's extractor so that a connection keeps its raw stream
//! ([`tokio_tungstenite::WebSocketStream::get_mut`]): after a frame too large to read, the gateway sends
//! its ABORT and then reads and discards what the client is still sending, instead of closing a socket
//! with unread data, which resets the connection and loses the ABORT on the client's side.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::wamp::Serializer;

/// A WAMP WebSocket subprotocol: the serializer, and whether each WebSocket message carries a batch of
/// WAMP messages ([`super::batched`]) rather than exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprotocol {
    /// The name in `Sec-WebSocket-Protocol`.
    pub name: &'static str,
    /// The serializer of every message.
    pub serializer: Serializer,
    /// True for the `.batched` variants.
    pub batched: bool,
}

const fn subprotocol(name: &'static str, serializer: Serializer, batched: bool) -> Subprotocol {
    Subprotocol {
        name,
        serializer,
        batched,
    }
}

/// The WebSocket subprotocols we speak, in order of preference: the first of these that a client
/// offers is taken (JSON first, then the binary serializers, then the batched variants).
pub const SUBPROTOCOLS: [Subprotocol; 6] = [
    subprotocol("wamp.2.json", Serializer::Json, false),
    subprotocol("wamp.2.msgpack", Serializer::Msgpack, false),
    subprotocol("wamp.2.cbor", Serializer::Cbor, false),
    subprotocol("wamp.2.json.batched", Serializer::Json, true),
    subprotocol("wamp.2.msgpack.batched", Serializer::Msgpack, true),
    subprotocol("wamp.2.cbor.batched", Serializer::Cbor, true),
];

/// An open WebSocket over the upgraded HTTP connection.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The outcome of an upgrade request.
pub enum Upgrade {
    /// Not a WebSocket handshake we accept: answer with this response.
    Refused(Response),
    /// Answer with `response` (101), then await `pending` for the socket.
    Accepted {
        /// The `101 Switching Protocols` response.
        response: Response,
        /// The negotiated subprotocol.
        subprotocol: Subprotocol,
        /// Resolves to the raw connection once the response has been sent.
        pending: OnUpgrade,
    },
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// True when `headers` ask for a WebSocket upgrade (`Connection: upgrade` and `Upgrade: websocket`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::CONNECTION, "upgrade")
        && header_has_token(headers, header::UPGRADE, "websocket")
}

fn refuse(status: StatusCode, text: &str) -> Upgrade {
    if let Some(suppressed) = crate::throttle::allow("websocket_refused", text) {
        tracing::warn!(suppressed, "websocket refused: {text}");
    }
    Upgrade::Refused((status, format!("{text}\n")).into_response())
}

/// The first of our subprotocols, in our order of preference, that the client offers.
fn choose(offered: impl Fn(&str) -> bool) -> Option<Subprotocol> {
    SUBPROTOCOLS.iter().copied().find(|p| offered(p.name))
}

/// Checks a WebSocket upgrade request and picks the first of our subprotocols the client offers.
pub fn negotiate(request: &mut Request) -> Upgrade {
    let headers = request.headers();
    if !is_upgrade(headers) {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WAMP over WebSocket: send a WebSocket upgrade request",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        let mut response = (
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 is required\n",
        )
            .into_response();
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return Upgrade::Refused(response);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    let offered = |name: &str| header_has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, name);
    let Some(subprotocol) = choose(offered) else {
        let names: Vec<&str> = SUBPROTOCOLS.iter().map(|p| p.name).collect();
        let text = format!(
            "offer one of the WebSocket subprotocols {}",
            names.join(", ")
        );
        return refuse(StatusCode::BAD_REQUEST, &text);
    };
    let Some(pending) = request.extensions_mut().remove::<OnUpgrade>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, subprotocol.name)
        .body(axum::body::Body::empty());
    match response {
        Ok(response) => Upgrade::Accepted {
            response,
            subprotocol,
            pending,
        },
        Err(_) => refuse(StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key"),
    }
}

/// Waits for the upgraded connection and wraps it as a WebSocket; `None` when the client went away
/// before the upgrade completed.
pub async fn open(pending: OnUpgrade, config: WebSocketConfig) -> Option<Box<Socket>> {
    match pending.await {
        Ok(upgraded) => Some(Box::new(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        )),
        Err(error) => {
            tracing::debug!(%error, "websocket upgrade failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(offer: &[&str]) -> Option<(&'static str, Serializer, bool)> {
        choose(|name| offer.contains(&name)).map(|p| (p.name, p.serializer, p.batched))
    }

    #[test]
    fn our_preference_decides_and_batched_comes_after_unbatched() {
        // Autobahn|Python's default offer, batched first: the gateway still prefers unbatched JSON.
        let autobahn = [
            "wamp.2.cbor.batched",
            "wamp.2.cbor",
            "wamp.2.msgpack.batched",
            "wamp.2.msgpack",
            "wamp.2.json.batched",
            "wamp.2.json",
        ];
        assert_eq!(
            chosen(&autobahn),
            Some(("wamp.2.json", Serializer::Json, false))
        );
        assert_eq!(
            chosen(&autobahn[..4]),
            Some(("wamp.2.msgpack", Serializer::Msgpack, false))
        );
        assert_eq!(
            chosen(&autobahn[..2]),
            Some(("wamp.2.cbor", Serializer::Cbor, false))
        );
        assert_eq!(
            chosen(&["wamp.2.json.batched", "wamp.2.msgpack.batched"]),
            Some(("wamp.2.json.batched", Serializer::Json, true))
        );
        assert_eq!(
            chosen(&["wamp.2.cbor.batched"]),
            Some(("wamp.2.cbor.batched", Serializer::Cbor, true))
        );
        assert_eq!(chosen(&["wamp.2.ubjson", "wamp.2.json.sse"]), None);
    }
}

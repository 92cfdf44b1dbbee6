//! WAMP over WebSocket: one task reads frames into the session, one writes the session's outbox to the
//! socket in batches (many queued frames, one flush). The handshake is in [`super::upgrade`]; on a batched
//! subprotocol ([`super::batched`]) one WebSocket message carries several WAMP messages both ways.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::driver::{self, Flow};
use super::upgrade::{Socket, Subprotocol};
use super::{batched, inbound};

use crate::router::{Closing, Outbox, OutboxReceiver, Router, Session};
use crate::wamp::{Frame, Serializer};

/// How long a closing session gets to flush what is queued and say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Initial WebSocket read buffer per connection (tungstenite's default, 128 KiB, would dominate the
/// memory of an idle connection); it grows for large messages.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// After a frame too large to read, how much of it the gateway reads and throws away so that the
/// client sees its ABORT instead of a reset (bounded by [`CLOSE_GRACE`] as well).
const DISCARD_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The WebSocket read limit for a configured message limit: a margin above it, so that a message a
/// little too large still reaches the session and gets a precise ABORT instead of a dropped connection.
pub fn frame_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

/// The tungstenite settings for a configured message limit: buffers sized for many mostly idle
/// connections, reads bounded at [`frame_limit`].
pub fn config(max_message_bytes: usize) -> WebSocketConfig {
    let frame_limit = frame_limit(max_message_bytes);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(frame_limit.saturating_mul(2))
        .max_message_size(Some(frame_limit))
        .max_frame_size(Some(frame_limit))
}

/// Serves one upgraded WebSocket until it closes or the gateway shuts down. The socket comes boxed: an
/// async fn's arguments stay in its future for its whole life, and this one lives as long as the
/// connection (the socket itself moves into the reader/writer split at once).
pub async fn serve(
    socket: Box<Socket>,
    subprotocol: Subprotocol,
    router: Arc<Router>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Subprotocol {
        serializer,
        batched: is_batched,
        ..
    } = subprotocol;
    let limits = router.limits;
    let (outbox, receiver) = Outbox::new(serializer, limits.queue);
    let outbox = Arc::new(outbox);
    let closing = receiver.closing.clone();
    let (sink, mut stream) = (*socket).split();
    // A client closed for being slow may still be reading: give it as long as it was allowed to be behind
    // to reach the ABORT that says why, behind what the kernel already holds for it.
    let grace = CLOSE_GRACE.max(limits.queue.slow_consumer);
    // A batched connection's JSON separator: the one its client uses (see batched.rs), shared with the
    // writer; None on an unbatched connection.
    let separator = is_batched.then(|| Arc::new(AtomicU8::new(batched::SEPARATOR)));
    let writer = tokio::spawn(write_loop(
        sink,
        receiver,
        serializer,
        separator.clone(),
        grace,
    ));
    let mut session = Session::new(router, Arc::clone(&outbox));
    tracing::debug!(?serializer, batched = is_batched, "websocket opened");
    let max = limits.max_message_bytes;
    let on_message = |session: &mut Session, bytes: &[u8]| {
        if let Some(separator) = &separator {
            if serializer == Serializer::Json {
                if let Some(used) = batched::json_separator(bytes) {
                    separator.store(used, Ordering::Relaxed);
                }
            }
            on_batch(session, serializer, bytes, max);
        } else {
            on_frame(session, serializer, bytes, max);
        }
    };

    let oversized = driver::drive(
        &mut session,
        &outbox,
        limits,
        closing,
        &mut stream,
        &mut shutdown,
        |session, outbox, frame| match frame {
            Some(Ok(WsMessage::Text(text))) => {
                on_message(session, text.as_bytes());
                Flow::Continue
            }
            Some(Ok(WsMessage::Binary(bytes))) => {
                on_message(session, &bytes);
                Flow::Continue
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                Flow::Continue
            }
            Some(Ok(WsMessage::Close(_))) | None => Flow::Stop,
            Some(Err(error)) => {
                if read_failed(session, outbox, error) {
                    Flow::Oversized
                } else {
                    Flow::Stop
                }
            }
        },
    )
    .await;
    let session_id = session.id();
    session.leave();
    outbox.close(Closing::Silent);
    drop(session);
    // Boxed: the closing steps hold the whole socket again, and a future's size is paid by every
    // connection for its whole life, idle or not.
    Box::pin(finish(writer, stream, oversized, grace)).await;
    tracing::debug!(
        session = session_id,
        queued_bytes = outbox.queued_bytes(),
        "websocket closed"
    );
}

/// Lets the writer send what it owes (ABORT/GOODBYE, close frame) and the peer answer the close. A peer
/// that stopped reading leaves the writer blocked on a full socket: it is given up after the grace
/// period, which closes the connection.
async fn finish(
    mut writer: tokio::task::JoinHandle<SplitSink<Socket, WsMessage>>,
    stream: futures_util::stream::SplitStream<Socket>,
    oversized: bool,
    grace: Duration,
) {
    let sink = match tokio::time::timeout(grace, &mut writer).await {
        Ok(Ok(sink)) => Some(sink),
        _ => {
            writer.abort();
            None
        }
    };
    match sink.map(|sink| stream.reunite(sink)) {
        // The client is still sending the rest of a frame we refused: read it away, so that closing
        // does not reset the connection before the client has read our ABORT.
        Some(Ok(mut socket)) if oversized => {
            let _ = tokio::time::timeout(CLOSE_GRACE, discard(socket.get_mut())).await;
        }
        Some(Ok(mut socket)) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, drain(&mut socket)).await;
        }
        Some(Err(_)) | None => {}
    }
}

/// One frame from the peer: decoded for the session, or refused with ABORT.
fn on_frame(session: &mut Session, serializer: Serializer, bytes: &[u8], max_message_bytes: usize) {
    match inbound::decode(serializer, bytes, max_message_bytes) {
        Ok(message) => session.on_message(message),
        Err(refusal) => session.abort(refusal.uri, refusal.message),
    }
}

/// One WebSocket message of a batched connection: its WAMP messages in order, until one is refused (or
/// the batch itself is malformed: ABORT, nothing of it is handled).
fn on_batch(session: &mut Session, serializer: Serializer, bytes: &[u8], max_message_bytes: usize) {
    match batched::split(serializer, bytes) {
        Ok(messages) => {
            for message in messages {
                match inbound::decode(serializer, message, max_message_bytes) {
                    Ok(message) => session.on_message(message),
                    Err(refusal) => return session.abort(refusal.uri, refusal.message),
                }
            }
        }
        Err(reason) => session.abort(crate::wamp::refusal::PROTOCOL_VIOLATION, reason),
    }
}

/// A WebSocket-level failure: a frame too large gets ABORT `wamp.error.payload_size_exceeded` (and close
/// code 1009; returns true); invalid UTF-8 in a text frame closes with 1007, any other protocol error
/// with 1002 (RFC 6455 section 7.4.1).
fn read_failed(session: &mut Session, outbox: &Outbox, error: WsError) -> bool {
    let code = match &error {
        WsError::Capacity(reason) => {
            session.abort(
                "wamp.error.payload_size_exceeded",
                format!("message too large: {reason}"),
            );
            return true;
        }
        WsError::Utf8(_) => close_code::INVALID_PAYLOAD,
        WsError::Protocol(_) | WsError::AttackAttempt => close_code::PROTOCOL_ERROR,
        _ => {
            tracing::debug!(session = session.id(), %error, "websocket read failed");
            return false;
        }
    };
    if let Some(suppressed) = crate::throttle::allow("websocket_error", "read") {
        tracing::warn!(session = session.id(), %error, code, suppressed, "websocket protocol error");
    }
    session.leave();
    outbox.close(Closing::Failed {
        code,
        reason: error.to_string(),
    });
    false
}

/// WebSocket close codes we send (RFC 6455 section 7.4.1).
pub mod close_code {
    /// The session ended (GOODBYE, ABORT, shutdown).
    pub const NORMAL: u16 = 1000;
    /// The peer broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message larger than the gateway accepts.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Reads messages until the peer closes (its answer to our close frame).
async fn drain(socket: &mut Socket) {
    while let Some(Ok(_)) = socket.next().await {}
}

/// Reads and throws away raw bytes until the peer closes, at most [`DISCARD_MAX_BYTES`].
async fn discard(io: &mut hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>) {
    // On the heap: a buffer in the future itself would be paid by every connection, idle or not.
    let mut buffer = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    while total < DISCARD_MAX_BYTES {
        match io.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n as u64,
        }
    }
}

fn to_ws(frame: Frame) -> WsMessage {
    match frame {
        // Checks the UTF-8 once more per send (a Text is made from a String) rather than use tungstenite's
        // unsafe unchecked constructor: the check stayed within fan-out's run-to-run noise (BENCHMARKS.md).
        Frame::Text(text) => WsMessage::Text(
            Utf8Bytes::try_from(text.into_bytes()).expect("a Text is made from a String"),
        ),
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

/// Writes the outbox to the socket until the session closes; gives the sink back so that the connection
/// can take the socket whole again for its last reads.
async fn write_loop(
    mut sink: SplitSink<Socket, WsMessage>,
    mut receiver: OutboxReceiver,
    serializer: Serializer,
    separator: Option<Arc<AtomicU8>>,
    grace: Duration,
) -> SplitSink<Socket, WsMessage> {
    let mut batch = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            _ = receiver.frames.next_batch(&mut batch) => {
                let written = if let Some(separator) = &separator {
                    let separator = separator.load(Ordering::Relaxed);
                    write_packed(&mut sink, &receiver, &mut batch, separator).await
                } else {
                    driver::write_batch(&mut sink, &receiver.frames, &mut batch, to_ws).await
                };
                if written.is_err() {
                    return sink;
                }
            }
            () = receiver.closing.closed() => break,
        }
    }
    let closing = receiver.closing.get();
    // Boxed, so that every connection's writer task does not carry the closing steps' size.
    let goodbye = Box::pin(say_goodbye(
        &mut sink,
        &mut receiver,
        serializer,
        separator.map(|s| s.load(Ordering::Relaxed)),
        closing,
    ));
    let _ = tokio::time::timeout(grace, goodbye).await;
    sink
}

/// The batched connection's [`driver::write_batch`]: queued frames packed into as few WebSocket messages
/// as [`batched::pack`] makes, one flush; the outbox is told of every frame as written.
async fn write_packed(
    sink: &mut SplitSink<Socket, WsMessage>,
    receiver: &OutboxReceiver,
    batch: &mut VecDeque<Frame>,
    separator: u8,
) -> Result<(), WsError> {
    while let Some((packed, bytes, count)) = batched::pack(batch, separator) {
        sink.feed(to_ws(packed)).await?;
        receiver.frames.written_many(bytes, count);
    }
    // As driver::write_batch does: give back what a burst left behind.
    batch.shrink_to(16);
    sink.flush().await
}

/// Flushes what is still queued (a reply to the client's GOODBYE, say), then the closing message and the
/// WebSocket close frame.
async fn say_goodbye(
    sink: &mut SplitSink<Socket, WsMessage>,
    receiver: &mut OutboxReceiver,
    serializer: Serializer,
    separator: Option<u8>,
    closing: Option<Closing>,
) -> Result<(), WsError> {
    // A batched connection's last messages are batches of one.
    let to_ws = |frame| match separator {
        Some(separator) => to_ws(batched::single(frame, separator)),
        None => to_ws(frame),
    };
    let (message, closing) = driver::last_words(closing);
    let (code, close_reason) = match closing {
        Some(Closing::Abort { reason, .. }) => {
            let code = if reason == inbound::PAYLOAD_SIZE_EXCEEDED {
                close_code::MESSAGE_TOO_BIG
            } else {
                close_code::NORMAL
            };
            (code, reason)
        }
        Some(Closing::Goodbye { reason, .. }) => (close_code::NORMAL, reason),
        Some(Closing::Failed { code, reason }) => (code, reason),
        Some(Closing::Silent) | None => (close_code::NORMAL, String::new()),
    };
    if message.is_none() {
        let mut batch = VecDeque::new();
        receiver.frames.take_batch(&mut batch);
        for frame in batch {
            let len = frame.len();
            sink.feed(to_ws(frame)).await?;
            receiver.frames.written(len);
        }
    }
    if let Some(message) = message {
        sink.feed(to_ws(serializer.encode(&message))).await?;
    }
    sink.send(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: close_reason_text(&close_reason).into(),
    })))
    .await
}

/// A close frame's reason must fit in 123 bytes: cut on a character boundary (a kick reason or an error
/// text may hold any character).
fn close_reason_text(reason: &str) -> &str {
    const MAX: usize = 120;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = close_reason_text(&reason);
        assert!(cut.len() <= 120 && cut.len() >= 119, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(close_reason_text("wamp.close.killed"), "wamp.close.killed");
    }
}

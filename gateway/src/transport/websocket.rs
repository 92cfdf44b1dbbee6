//! WAMP over WebSocket: one task reads frames into the session, one writes the session's outbox to the
//! socket in batches (many queued frames, one flush).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;

use crate::router::{Closing, Outbox, OutboxReceiver, Router, Session};
use crate::wamp::{Frame, Message, Serializer};

/// Frames a writer keeps room for between bursts; more is given back after a burst.
const IDLE_BATCH_CAPACITY: usize = 16;
/// How long a closing session gets to flush what is queued and say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The WebSocket read limit for a configured message limit: a margin above it, so that a message a
/// little too large still reaches the session and gets a precise ABORT instead of a dropped connection.
pub fn frame_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

/// Serves one upgraded WebSocket until it closes or the gateway shuts down.
pub async fn serve(
    socket: WebSocket,
    serializer: Serializer,
    router: Arc<Router>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = router.limits;
    let (outbox, receiver) = Outbox::new(serializer, limits.outbound_queue, limits.slow_consumer);
    let outbox = Arc::new(outbox);
    let mut closing = receiver.closing.clone();
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, receiver, serializer));
    let mut session = Session::new(router, Arc::clone(&outbox));
    tracing::debug!(?serializer, "websocket opened");

    let hello_deadline = tokio::time::sleep(limits.hello_timeout);
    tokio::pin!(hello_deadline);
    if *shutdown.borrow() {
        session.shutdown();
    }
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => session.on_frame(text.as_bytes()),
                Some(Ok(WsMessage::Binary(bytes))) => session.on_frame(&bytes),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Err(error)) => {
                    read_failed(&mut session, error);
                    break;
                }
            },
            _ = closing.changed() => break,
            _ = shutdown.changed() => session.shutdown(),
            _ = &mut hello_deadline, if !session.is_joined() && !outbox.is_closing() => {
                let message = format!(
                    "session not established (HELLO, then AUTHENTICATE if challenged) within {} ms",
                    limits.hello_timeout.as_millis()
                );
                session.abort("wamp.error.protocol_violation", message);
            }
        }
    }
    let session_id = session.id();
    session.leave();
    outbox.close(Closing::Silent);
    drop(session);
    // Let the writer send what it owes (ABORT/GOODBYE, close frame) and the peer answer the close.
    // A peer that stopped reading leaves the writer blocked on a full socket: give up on it after the
    // grace period, which closes the connection.
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, drain(&mut stream)).await;
    tracing::debug!(
        session = session_id,
        dropped = outbox.dropped(),
        "websocket closed"
    );
}

fn read_failed(session: &mut Session, error: axum::Error) {
    let text = error.to_string();
    if text.contains("Space limit exceeded")
        || text.contains("too long")
        || text.contains("Capacity")
    {
        session.abort(
            "wamp.error.payload_size_exceeded",
            format!("message too large: {text}"),
        );
    } else {
        tracing::debug!(session = session.id(), error = %text, "websocket read failed");
    }
}

async fn drain(stream: &mut SplitStream<WebSocket>) {
    while let Some(Ok(_)) = stream.next().await {}
}

fn to_ws(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(text) => WsMessage::Text(text),
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut receiver: OutboxReceiver,
    serializer: Serializer,
) {
    let mut batch = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            _ = receiver.frames.next_batch(&mut batch) => {
                if write_batch(&mut sink, &mut batch).await.is_err() {
                    return;
                }
            }
            _ = receiver.closing.changed() => break,
        }
    }
    let closing = receiver.closing.borrow().clone();
    let goodbye = say_goodbye(&mut sink, &mut receiver, serializer, closing);
    let _ = tokio::time::timeout(CLOSE_GRACE, goodbye).await;
}

/// Writes every frame of `batch` with one flush, then gives back memory a burst left behind.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    batch: &mut VecDeque<Frame>,
) -> Result<(), axum::Error> {
    while let Some(frame) = batch.pop_front() {
        sink.feed(to_ws(frame)).await?;
    }
    if batch.capacity() > IDLE_BATCH_CAPACITY {
        batch.shrink_to(IDLE_BATCH_CAPACITY);
    }
    sink.flush().await
}

/// Flushes what is still queued (a reply to the client's GOODBYE, say), then the closing message and the
/// WebSocket close frame.
async fn say_goodbye(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    receiver: &mut OutboxReceiver,
    serializer: Serializer,
    closing: Option<Closing>,
) -> Result<(), axum::Error> {
    let (message, close_reason) = match closing {
        Some(Closing::Abort { reason, message }) => {
            (Some(Message::abort(&reason, message)), reason)
        }
        Some(Closing::Goodbye { reason, message }) => {
            let mut details = crate::wamp::Dict::new();
            details.insert("message".into(), message.into());
            (
                Some(Message::Goodbye {
                    details,
                    reason: reason.clone(),
                }),
                reason,
            )
        }
        Some(Closing::Silent) | None => (None, String::new()),
    };
    if message.is_none() {
        let mut batch = VecDeque::new();
        receiver.frames.take_batch(&mut batch);
        for frame in batch {
            sink.feed(to_ws(frame)).await?;
        }
    }
    if let Some(message) = message {
        sink.feed(to_ws(serializer.encode(&message))).await?;
    }
    // A close frame's reason must fit in 123 bytes; WAMP reason URIs are ASCII.
    let mut reason = close_reason;
    reason.truncate(120);
    sink.send(WsMessage::Close(Some(CloseFrame {
        code: 1000,
        reason: reason.into(),
    })))
    .await
}

//! WAMP over RawSocket (TCP): the 4-byte handshake (0x7F, the length exponent and serializer, two zero
//! bytes) and then frames of a 4-byte header (3 low bits of the first byte: the frame type, regular WAMP
//! message, PING or PONG; then the payload length, 24 bits big-endian) and the payload. Served on the HTTP
//! port: [`super::accept`] hands over a connection whose first byte is [`MAGIC`]. The session, its outbox
//! and its timers are the WebSocket transport's ([`super::driver`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

use super::driver::{self, Flow};
use super::inbound;
use crate::router::{Closing, Outbox, OutboxReceiver, Router, Session};
use crate::wamp::{Frame, Serializer};

/// The first byte of a RawSocket handshake (never the first byte of an HTTP request).
pub const MAGIC: u8 = 0x7F;

/// Handshake error: serializer unsupported.
pub const ERROR_SERIALIZER: u8 = 1;
/// Handshake error: use of reserved bits.
pub const ERROR_RESERVED: u8 = 3;
/// Handshake error: maximum connection count reached.
pub const ERROR_CONNECTIONS: u8 = 4;

/// Frame types (the low 3 bits of a frame header's first byte).
const FRAME_MESSAGE: u8 = 0;
const FRAME_PING: u8 = 1;
const FRAME_PONG: u8 = 2;

/// How long a closing session gets to flush what is queued and say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After a frame too large to read, how much of it is read and thrown away so that the client sees its
/// ABORT instead of a reset.
const DISCARD_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Largest payload a frame header can declare.
const MAX_FRAME_LENGTH: usize = (1 << 24) - 1;
/// Initial read buffer of a connection; it grows (up to the limit) for larger messages.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// The 4-byte handshake error reply for `code`.
pub fn error_reply(code: u8) -> [u8; 4] {
    [MAGIC, code << 4, 0, 0]
}

/// The largest message length `2^(9+n)` a peer announcing exponent `n` accepts (capped by the 24-bit
/// frame length).
fn length_of(exponent: u8) -> usize {
    (1usize << (9 + u32::from(exponent))).min(MAX_FRAME_LENGTH)
}

/// The exponent we announce for `max_message_bytes`: the largest `n` with `2^(9+n)` within it (a client
/// then never sends a message we refuse).
fn exponent_for(max_message_bytes: usize) -> u8 {
    (0..=15u8)
        .rev()
        .find(|&n| (1usize << (9 + u32::from(n))) <= max_message_bytes)
        .unwrap_or(0)
}

/// The outcome of a client's handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Speak `serializer`, sending messages of at most `client_max` bytes; answer with `reply`.
    Accepted {
        /// The serializer the client asked for.
        serializer: Serializer,
        /// The largest message the client accepts.
        client_max: usize,
        /// Our handshake answer.
        reply: [u8; 4],
    },
    /// Answer with this error reply and close.
    Refused([u8; 4]),
}

/// Checks the 4 bytes a client opens with (the first is [`MAGIC`]).
pub fn handshake(request: [u8; 4], max_message_bytes: usize) -> Handshake {
    if request[0] != MAGIC || request[2] != 0 || request[3] != 0 {
        return Handshake::Refused(error_reply(ERROR_RESERVED));
    }
    let Some(serializer) = Serializer::from_rawsocket_id(request[1] & 0x0F) else {
        return Handshake::Refused(error_reply(ERROR_SERIALIZER));
    };
    let ours = exponent_for(max_message_bytes);
    Handshake::Accepted {
        serializer,
        client_max: length_of(request[1] >> 4),
        reply: [MAGIC, ours << 4 | (request[1] & 0x0F), 0, 0],
    }
}

/// One frame read from the peer.
#[derive(Debug, PartialEq, Eq)]
enum Inbound {
    Message(BytesMut),
    Ping(BytesMut),
    Pong,
    /// A header declaring more than the limit (the payload is not read).
    Oversized(usize),
}

/// Frames from the peer, each bounded by `limit` before anything is allocated for it.
struct FrameDecoder {
    limit: usize,
}

impl Decoder for FrameDecoder {
    type Item = Inbound;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, io::Error> {
        if src.len() < 4 {
            return Ok(None);
        }
        let kind = src[0];
        let length = usize::from(src[1]) << 16 | usize::from(src[2]) << 8 | usize::from(src[3]);
        if kind & 0xF8 != 0 || kind > FRAME_PONG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid RawSocket frame type {kind:#04x}"),
            ));
        }
        if length > self.limit {
            return Ok(Some(Inbound::Oversized(length)));
        }
        if src.len() < 4 + length {
            src.reserve(4 + length - src.len());
            return Ok(None);
        }
        src.advance(4);
        let payload = src.split_to(length);
        Ok(Some(match kind {
            FRAME_MESSAGE => Inbound::Message(payload),
            FRAME_PING => Inbound::Ping(payload),
            _ => Inbound::Pong,
        }))
    }
}

/// What the writer sends.
enum Outbound {
    Message(Frame),
    Pong(Bytes),
}

struct FrameEncoder;

impl Encoder<Outbound> for FrameEncoder {
    type Error = io::Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<(), io::Error> {
        let (kind, payload): (u8, &[u8]) = match &item {
            Outbound::Message(frame) => (FRAME_MESSAGE, frame.as_bytes()),
            Outbound::Pong(bytes) => (FRAME_PONG, bytes),
        };
        if payload.len() > MAX_FRAME_LENGTH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too large for a RawSocket frame",
            ));
        }
        dst.reserve(4 + payload.len());
        dst.put_u8(kind);
        dst.put_uint(payload.len() as u64, 3);
        dst.put_slice(payload);
        Ok(())
    }
}

type Writer = FramedWrite<OwnedWriteHalf, FrameEncoder>;

/// Frees the writer's buffer once it is flushed. `FramedWrite` starts with 8 KiB and keeps what a burst
/// grew it to: an idle RawSocket connection held about 6 KiB more than a WebSocket one. The next burst
/// allocates again, once per batch written, not per frame.
fn give_back_write_buffer(sink: &mut Writer) {
    if sink.write_buffer().is_empty() && sink.write_buffer().capacity() > 0 {
        *sink.write_buffer_mut() = BytesMut::new();
    }
}

/// Serves one RawSocket connection (its first byte, [`MAGIC`], not yet read): the handshake within
/// `handshake_timeout`, then the session until it closes or the gateway shuts down.
pub async fn serve(
    mut tcp: TcpStream,
    router: Arc<Router>,
    mut shutdown: watch::Receiver<bool>,
    handshake_timeout: Duration,
) {
    let limits = router.limits;
    let mut request = [0u8; 4];
    match tokio::time::timeout(handshake_timeout, tcp.read_exact(&mut request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            telemetry_refused("rawsocket handshake not complete in time");
            return;
        }
    }
    let (serializer, client_max, reply) = match handshake(request, limits.max_message_bytes) {
        Handshake::Accepted {
            serializer,
            client_max,
            reply,
        } => (serializer, client_max, reply),
        Handshake::Refused(reply) => {
            if let Some(suppressed) = crate::throttle::allow("rawsocket_refused", "handshake") {
                tracing::warn!(?request, suppressed, "rawsocket handshake refused");
            }
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                tcp.write_all(&reply).await?;
                tcp.shutdown().await
            })
            .await;
            return;
        }
    };
    if tokio::time::timeout(handshake_timeout, tcp.write_all(&reply))
        .await
        .map_or(true, |written| written.is_err())
    {
        return;
    }
    let (read, write) = tcp.into_split();
    let (outbox, receiver) = Outbox::new(serializer, limits.queue);
    let outbox = Arc::new(outbox.over("rawsocket"));
    let closing = receiver.closing.clone();
    let grace = CLOSE_GRACE.max(limits.queue.slow_consumer);
    // PONGs go through the writer, which owns the socket's sending side; one at a time is plenty.
    let (pongs, pong_receiver) = mpsc::channel(1);
    let mut sink = FramedWrite::new(write, FrameEncoder);
    give_back_write_buffer(&mut sink);
    let writer = tokio::spawn(write_loop(
        sink,
        receiver,
        pong_receiver,
        Arc::clone(&outbox),
        client_max,
        grace,
    ));
    let mut stream = FramedRead::with_capacity(
        read,
        FrameDecoder {
            limit: limits.max_message_bytes,
        },
        READ_BUFFER_BYTES,
    );
    let mut session = Session::new(router, Arc::clone(&outbox));
    tracing::debug!(?serializer, client_max, "rawsocket opened");
    let oversized = driver::drive(
        &mut session,
        &outbox,
        limits,
        closing,
        &mut stream,
        &mut shutdown,
        |session, _outbox, frame| match frame {
            Some(Ok(Inbound::Message(bytes))) => {
                match inbound::decode(serializer, &bytes, limits.max_message_bytes) {
                    Ok(message) => session.on_message(message),
                    Err(refusal) => session.abort(refusal.uri, refusal.message),
                }
                Flow::Continue
            }
            Some(Ok(Inbound::Ping(payload))) => {
                let _ = pongs.try_send(payload.freeze());
                Flow::Continue
            }
            Some(Ok(Inbound::Pong)) => Flow::Continue,
            Some(Ok(Inbound::Oversized(length))) => {
                let message = format!(
                    "message of {length} bytes exceeds the limit of {} bytes",
                    limits.max_message_bytes
                );
                session.abort(inbound::PAYLOAD_SIZE_EXCEEDED, message);
                Flow::Oversized
            }
            Some(Err(error)) => {
                tracing::debug!(session = session.id(), %error, "rawsocket read failed");
                Flow::Stop
            }
            None => Flow::Stop,
        },
    )
    .await;
    let session_id = session.id();
    session.leave();
    outbox.close(Closing::Silent);
    drop(session);
    drop(pongs);
    // The writer sends what it owes (ABORT/GOODBYE) and closes its side; meanwhile what the peer still
    // sends is read away (bounded), so that closing does not reset the connection under our last words.
    let mut read = stream.into_inner();
    let reading = async {
        let _ = tokio::time::timeout(grace + CLOSE_GRACE, discard(&mut read, oversized)).await;
    };
    let writing = async {
        let mut writer = writer;
        if tokio::time::timeout(grace, &mut writer).await.is_err() {
            writer.abort();
        }
    };
    tokio::join!(reading, writing);
    tracing::debug!(session = session_id, "rawsocket closed");
}

fn telemetry_refused(what: &str) {
    crate::telemetry::connection_refused(crate::telemetry::REFUSED_HEADER_TIMEOUT);
    if let Some(suppressed) = crate::throttle::allow("header_timeout", "rawsocket") {
        tracing::warn!(suppressed, "connection closed: {what}");
    }
}

/// Reads and throws away what the peer sends until it closes: at most [`DISCARD_MAX_BYTES`] after an
/// oversized frame, otherwise at most one maximal frame's worth (a peer answering our close).
async fn discard(read: &mut OwnedReadHalf, oversized: bool) {
    let limit = if oversized {
        DISCARD_MAX_BYTES
    } else {
        MAX_FRAME_LENGTH as u64
    };
    let mut buffer = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    while total < limit {
        match read.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n as u64,
        }
    }
}

/// Writes the outbox (and PONGs) to the socket until the session closes, then its last words, and
/// closes the sending side. A message larger than the client accepts ends the session with ABORT
/// `wamp.error.payload_size_exceeded` (the spec forbids sending it).
async fn write_loop(
    mut sink: Writer,
    receiver: OutboxReceiver,
    mut pongs: mpsc::Receiver<Bytes>,
    outbox: Arc<Outbox>,
    client_max: usize,
    grace: Duration,
) {
    let mut batch = std::collections::VecDeque::new();
    let mut pongs_open = true;
    loop {
        tokio::select! {
            biased;
            _ = receiver.frames.next_batch(&mut batch) => {
                if let Some(position) = batch.iter().position(|frame| frame.len() > client_max) {
                    let length = batch[position].len();
                    batch.truncate(position);
                    outbox.close(Closing::Abort {
                        reason: inbound::PAYLOAD_SIZE_EXCEEDED.into(),
                        message: format!(
                            "message of {length} bytes exceeds the {client_max} bytes the client accepts"
                        ),
                    });
                }
                if driver::write_batch(&mut sink, &receiver.frames, &mut batch, Outbound::Message)
                    .await
                    .is_err()
                {
                    return;
                }
                give_back_write_buffer(&mut sink);
            }
            pong = pongs.recv(), if pongs_open => match pong {
                Some(payload) if payload.len() <= client_max => {
                    if sink.send(Outbound::Pong(payload)).await.is_err() {
                        return;
                    }
                }
                Some(_) => {}
                None => pongs_open = false,
            },
            () = receiver.closing.closed() => break,
        }
    }
    let closing = receiver.closing.get();
    let goodbye = async {
        let (message, _) = driver::last_words(closing);
        match message {
            Some(message) => {
                let frame = outbox.serializer().encode(&message);
                sink.feed(Outbound::Message(frame)).await?;
            }
            None => {
                let mut batch = std::collections::VecDeque::new();
                receiver.frames.take_batch(&mut batch);
                batch.retain(|frame| frame.len() <= client_max);
                driver::write_batch(&mut sink, &receiver.frames, &mut batch, Outbound::Message)
                    .await?;
            }
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(grace, goodbye).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_accepts_json_msgpack_and_cbor_and_announces_our_limit() {
        // 1 MiB = 2^20: exponent 11.
        assert_eq!(
            handshake([MAGIC, 0xF1, 0, 0], 1 << 20),
            Handshake::Accepted {
                serializer: Serializer::Json,
                client_max: MAX_FRAME_LENGTH,
                reply: [MAGIC, 0xB1, 0, 0],
            }
        );
        assert_eq!(
            handshake([MAGIC, 0x02, 0, 0], 1_000_000),
            Handshake::Accepted {
                serializer: Serializer::Msgpack,
                client_max: 512,
                reply: [MAGIC, 0xA2, 0, 0],
            }
        );
        assert_eq!(
            handshake([MAGIC, 0x03, 0, 0], 1 << 20),
            Handshake::Accepted {
                serializer: Serializer::Cbor,
                client_max: 512,
                reply: [MAGIC, 0xB3, 0, 0],
            }
        );
        // Below 512 bytes we still announce the smallest length.
        assert_eq!(exponent_for(100), 0);
    }

    #[test]
    fn handshake_refuses_unknown_serializers_and_reserved_bits() {
        for serializer in [0x00, 0x04, 0x0F] {
            assert_eq!(
                handshake([MAGIC, 0xF0 | serializer, 0, 0], 1 << 20),
                Handshake::Refused([MAGIC, 0x10, 0, 0])
            );
        }
        assert_eq!(
            handshake([MAGIC, 0xF1, 1, 0], 1 << 20),
            Handshake::Refused([MAGIC, 0x30, 0, 0])
        );
        assert_eq!(
            handshake([MAGIC, 0xF1, 0, 0x80], 1 << 20),
            Handshake::Refused([MAGIC, 0x30, 0, 0])
        );
    }

    #[test]
    fn frames_are_bounded_before_they_are_read() {
        let mut decoder = FrameDecoder { limit: 1024 };
        let mut buffer = BytesMut::from(&[0u8, 0xFF, 0xFF, 0xFF][..]);
        assert_eq!(
            decoder.decode(&mut buffer).unwrap(),
            Some(Inbound::Oversized(MAX_FRAME_LENGTH))
        );
        assert!(buffer.capacity() < 64 * 1024);

        let mut buffer = BytesMut::from(&[0u8, 0, 0, 3, b'[', b'1'][..]);
        assert_eq!(decoder.decode(&mut buffer).unwrap(), None);
        buffer.extend_from_slice(b"]\x01\x00\x00\x01x");
        assert_eq!(
            decoder.decode(&mut buffer).unwrap(),
            Some(Inbound::Message(BytesMut::from(&b"[1]"[..])))
        );
        assert_eq!(
            decoder.decode(&mut buffer).unwrap(),
            Some(Inbound::Ping(BytesMut::from(&b"x"[..])))
        );

        for bad in [3u8, 7, 0x08, 0x80] {
            let mut buffer = BytesMut::from(&[bad, 0, 0, 0][..]);
            assert!(decoder.decode(&mut buffer).is_err(), "{bad:#x}");
        }
    }

    #[test]
    fn frames_are_encoded_with_a_length_header() {
        let mut out = BytesMut::new();
        FrameEncoder
            .encode(Outbound::Pong(Bytes::from_static(b"hi")), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"\x02\x00\x00\x02hi");
    }
}

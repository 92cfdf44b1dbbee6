//! The client side of WAMP RawSocket over TCP, as the gateway serves it on its HTTP port: a 4-byte
//! handshake (0x7F, the length exponent and serializer, two zero bytes; the gateway answers in kind or
//! with an error code), then frames of a 4-byte header (frame type in the low 3 bits of the first byte:
//! message, PING or PONG; then the payload length, 24 bits big-endian) and the payload.

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::Serializer;

/// The first byte of a RawSocket handshake.
pub const MAGIC: u8 = 0x7F;
/// Frame type of a WAMP message.
pub const FRAME_MESSAGE: u8 = 0;
/// Frame type of a PING.
pub const FRAME_PING: u8 = 1;
/// Frame type of a PONG.
pub const FRAME_PONG: u8 = 2;
/// Largest payload a frame header can declare.
pub const MAX_FRAME: usize = (1 << 24) - 1;
/// Length exponent the client announces: messages up to 2^(9+15) bytes (capped by [`MAX_FRAME`]).
const EXPONENT: u8 = 15;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// The serializer's code in the handshake's second byte (low 4 bits).
pub fn serializer_code(serializer: Serializer) -> u8 {
    match serializer {
        Serializer::Json => 1,
        Serializer::Msgpack => 2,
    }
}

/// The 4 bytes a client opens with for `serializer`.
pub fn handshake_request(serializer: Serializer) -> [u8; 4] {
    [MAGIC, EXPONENT << 4 | serializer_code(serializer), 0, 0]
}

/// Checks the gateway's handshake reply to a request for `serializer`; returns the largest message the
/// gateway accepts (`2^(9+n)` for its exponent `n`, capped at [`MAX_FRAME`]).
pub fn check_reply(reply: [u8; 4], serializer: Serializer) -> anyhow::Result<usize> {
    if reply[0] != MAGIC || reply[2] != 0 || reply[3] != 0 {
        bail!("not a RawSocket handshake reply: {reply:02x?}");
    }
    let code = reply[1] & 0x0F;
    if code == 0 {
        bail!("RawSocket handshake refused with error {}", reply[1] >> 4);
    }
    if code != serializer_code(serializer) {
        bail!("gateway answered serializer {code}, asked for {serializer:?}");
    }
    Ok((1usize << (9 + u32::from(reply[1] >> 4))).min(MAX_FRAME))
}

/// The 4-byte header of a frame of type `kind` carrying `len` payload bytes (`len` at most [`MAX_FRAME`]).
pub fn frame_header(kind: u8, len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME);
    let len = len.to_be_bytes();
    let n = len.len();
    [kind & 0x07, len[n - 3], len[n - 2], len[n - 1]]
}

/// Frame type and payload length of a 4-byte header; an error for reserved bits or unknown types.
pub fn parse_header(header: [u8; 4]) -> anyhow::Result<(u8, usize)> {
    let kind = header[0];
    if kind > FRAME_PONG {
        bail!("invalid RawSocket frame type {kind:#04x}");
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    Ok((kind, len))
}

/// A whole message frame for `payload`.
pub fn message_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&frame_header(FRAME_MESSAGE, payload.len()));
    frame.extend_from_slice(payload);
    frame
}

/// A RawSocket connection after its handshake: buffered writes, whole-message reads (PINGs answered).
#[derive(Debug)]
pub struct RawLink {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Largest message the gateway accepts.
    gateway_max: usize,
}

impl RawLink {
    /// Performs the handshake for `serializer` on a connected `stream` (the caller bounds the time).
    pub async fn open(mut stream: TcpStream, serializer: Serializer) -> anyhow::Result<RawLink> {
        stream
            .write_all(&handshake_request(serializer))
            .await
            .context("RawSocket handshake write failed")?;
        let mut reply = [0u8; 4];
        stream
            .read_exact(&mut reply)
            .await
            .context("no RawSocket handshake reply")?;
        let gateway_max = check_reply(reply, serializer)?;
        Ok(RawLink {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            gateway_max,
        })
    }

    /// Queues one message without writing it.
    pub fn feed(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        if payload.len() > self.gateway_max {
            bail!(
                "message of {} bytes exceeds the gateway's {} bytes",
                payload.len(),
                self.gateway_max
            );
        }
        self.output
            .extend_from_slice(&frame_header(FRAME_MESSAGE, payload.len()));
        self.output.extend_from_slice(payload);
        Ok(())
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.output.is_empty() {
            self.stream
                .write_all(&self.output)
                .await
                .context("RawSocket write failed")?;
            self.output.clear();
            if self.output.capacity() > 1 << 20 {
                self.output.shrink_to(64 * 1024);
            }
        }
        Ok(())
    }

    /// A complete frame at the start of the input buffer, removed from it.
    fn take_frame(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        let Some(header) = self.input.first_chunk::<4>() else {
            return Ok(None);
        };
        let (kind, len) = parse_header(*header)?;
        if self.input.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.input[4..4 + len].to_vec();
        self.input.drain(..4 + len);
        Ok(Some((kind, payload)))
    }

    /// The next message's payload (PINGs answered, PONGs skipped); `None` once the gateway closed the
    /// connection. Cancel-safe: bytes read are kept in the buffer.
    pub async fn next_message(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            while let Some((kind, payload)) = self.take_frame()? {
                match kind {
                    FRAME_MESSAGE => return Ok(Some(payload)),
                    FRAME_PING => {
                        self.output
                            .extend_from_slice(&frame_header(FRAME_PONG, payload.len()));
                        self.output.extend_from_slice(&payload);
                        self.flush().await?;
                    }
                    _ => {}
                }
            }
            self.input.reserve(READ_CHUNK);
            let read = self
                .stream
                .read_buf(&mut self.input)
                .await
                .context("RawSocket read failed")?;
            if read == 0 {
                if !self.input.is_empty() {
                    bail!("connection closed inside a RawSocket frame");
                }
                return Ok(None);
            }
        }
    }

    /// Whether bytes already read wait in the buffer (then [`RawLink::into_inner`] would lose them).
    pub fn has_buffered(&self) -> bool {
        !self.input.is_empty()
    }

    /// Closes the sending side (the gateway then ends the session).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The bare TCP stream; bytes already read and not yet returned are dropped.
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_bytes_and_replies() {
        assert_eq!(handshake_request(Serializer::Json), [0x7F, 0xF1, 0, 0]);
        assert_eq!(handshake_request(Serializer::Msgpack), [0x7F, 0xF2, 0, 0]);
        // The gateway's 1 MiB limit is exponent 11 (2^20).
        assert_eq!(
            check_reply([0x7F, 0xB1, 0, 0], Serializer::Json).unwrap(),
            1 << 20
        );
        assert_eq!(
            check_reply([0x7F, 0xF2, 0, 0], Serializer::Msgpack).unwrap(),
            MAX_FRAME
        );
        // Error 1 (serializer unsupported), another serializer, garbage.
        assert!(check_reply([0x7F, 0x10, 0, 0], Serializer::Json).is_err());
        assert!(check_reply([0x7F, 0xB2, 0, 0], Serializer::Json).is_err());
        assert!(check_reply(*b"HTTP", Serializer::Json).is_err());
    }

    #[test]
    fn headers_round_trip() {
        for (kind, len) in [
            (FRAME_MESSAGE, 0),
            (FRAME_PING, 200),
            (FRAME_PONG, MAX_FRAME),
        ] {
            assert_eq!(parse_header(frame_header(kind, len)).unwrap(), (kind, len));
        }
        assert_eq!(frame_header(FRAME_MESSAGE, 0x01_02_03), [0, 1, 2, 3]);
        assert!(parse_header([3, 0, 0, 1]).is_err());
        assert!(parse_header([0x80, 0, 0, 1]).is_err());
        let frame = message_frame(b"[6,{},\"wamp.close.normal\"]");
        assert_eq!(&frame[..4], &[0, 0, 0, 26]);
        assert_eq!(&frame[4..], b"[6,{},\"wamp.close.normal\"]");
    }

    /// A fake gateway on a loopback port: checks the handshake, answers it, sends a PING, a split
    /// message, checks the PONG and the client's message, and closes.
    #[tokio::test]
    async fn link_answers_pings_and_reassembles_messages() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4];
            socket.read_exact(&mut request).await.unwrap();
            assert_eq!(request, [0x7F, 0xF2, 0, 0]);
            socket.write_all(&[0x7F, 0xB2, 0, 0]).await.unwrap();
            let mut out = frame_header(FRAME_PING, 2).to_vec();
            out.extend(b"hi");
            out.extend(message_frame(b"hello"));
            let (first, second) = out.split_at(9);
            socket.write_all(first).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            socket.write_all(second).await.unwrap();
            let mut pong = [0u8; 6];
            socket.read_exact(&mut pong).await.unwrap();
            assert_eq!(pong, [FRAME_PONG, 0, 0, 2, b'h', b'i']);
            let mut message = [0u8; 7];
            socket.read_exact(&mut message).await.unwrap();
            assert_eq!(message, [0, 0, 0, 3, b'a', b'b', b'c']);
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut link = RawLink::open(stream, Serializer::Msgpack).await.unwrap();
        assert_eq!(link.next_message().await.unwrap().unwrap(), b"hello");
        link.feed(b"abc").unwrap();
        link.flush().await.unwrap();
        server.await.unwrap();
        assert_eq!(link.next_message().await.unwrap(), None);
        assert!(link.feed(&vec![0; (1 << 20) + 1]).is_err());
    }
}

//! Counting WebSocket frames straight off a TCP stream, without tungstenite: unsampled subscribers only
//! need to know how many EVENTs arrived, so they skip payloads instead of decoding them. This keeps the
//! generator far cheaper per delivery than the gateway it measures. RawSocket frames (a 4-byte header)
//! are counted the same way.

use crate::rawsocket;
use crate::wire::{code, Serializer, Transport};

/// Most header bytes a server frame can have (2 + 8 length bytes + 4 mask bytes).
const MAX_HEADER: usize = 14;
/// Payload bytes kept to recognise an EVENT.
const PREFIX: usize = 4;

/// Incremental WebSocket frame parser that counts EVENT frames.
#[derive(Debug)]
pub struct FrameCounter {
    serializer: Serializer,
    transport: Transport,
    header: [u8; MAX_HEADER],
    header_len: usize,
    in_payload: bool,
    opcode: u8,
    remaining: u64,
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// EVENT frames seen.
    pub events: u64,
    /// Other data frames seen (replies, ABORT, GOODBYE, fragments).
    pub other: u64,
    /// True once a close frame arrived.
    pub closed: bool,
}

impl FrameCounter {
    /// A counter for WebSocket frames of `serializer`.
    pub fn new(serializer: Serializer) -> Self {
        Self::over(Transport::Websocket, serializer)
    }

    /// A counter for frames of `transport` carrying `serializer`.
    pub fn over(transport: Transport, serializer: Serializer) -> Self {
        FrameCounter {
            serializer,
            transport,
            header: [0; MAX_HEADER],
            header_len: 0,
            in_payload: false,
            opcode: 0,
            remaining: 0,
            prefix: [0; PREFIX],
            prefix_len: 0,
            events: 0,
            other: 0,
            closed: false,
        }
    }

    /// Consumes bytes read from the socket.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if !self.in_payload {
                self.header[self.header_len] = data[0];
                self.header_len += 1;
                data = &data[1..];
                let header = &self.header[..self.header_len];
                let parsed = match self.transport {
                    Transport::Websocket => parse_header(header),
                    Transport::Rawsocket => parse_raw_header(header),
                };
                if let Some((opcode, len)) = parsed {
                    self.header_len = 0;
                    self.in_payload = true;
                    self.opcode = opcode;
                    self.remaining = len;
                    self.prefix_len = 0;
                    if len == 0 {
                        self.finish_frame();
                    }
                }
                continue;
            }
            let available = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let keep = (PREFIX - self.prefix_len).min(available);
            self.prefix[self.prefix_len..self.prefix_len + keep].copy_from_slice(&data[..keep]);
            self.prefix_len += keep;
            data = &data[available..];
            self.remaining -= available as u64;
            if self.remaining == 0 {
                self.finish_frame();
            }
        }
    }

    fn finish_frame(&mut self) {
        self.in_payload = false;
        match self.opcode {
            0x1 | 0x2 if is_event(self.serializer, &self.prefix[..self.prefix_len]) => {
                self.events += 1
            }
            0x8 => self.closed = true,
            0x9 | 0xA => {}
            _ => self.other += 1,
        }
    }
}

/// Opcode and payload length once `header` holds a whole frame header.
fn parse_header(header: &[u8]) -> Option<(u8, u64)> {
    if header.len() < 2 {
        return None;
    }
    let opcode = header[0] & 0x0F;
    let masked = header[1] & 0x80 != 0;
    let short = header[1] & 0x7F;
    let extended = match short {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let needed = 2 + extended + if masked { 4 } else { 0 };
    if header.len() < needed {
        return None;
    }
    let len = match extended {
        0 => u64::from(short),
        n => header[2..2 + n]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    };
    Some((opcode, len))
}

/// Once `header` holds a RawSocket frame header (4 bytes): the WebSocket opcode that plays its part
/// (message: binary; PING, PONG; a reserved type: 0xF, counted as other) and the payload length.
fn parse_raw_header(header: &[u8]) -> Option<(u8, u64)> {
    let header: [u8; 4] = header.try_into().ok()?;
    let opcode = match rawsocket::parse_header(header) {
        Ok((rawsocket::FRAME_MESSAGE, _)) => 0x2,
        Ok((rawsocket::FRAME_PING, _)) => 0x9,
        Ok(_) => 0xA,
        Err(_) => 0xF,
    };
    let len = u64::from(header[1]) << 16 | u64::from(header[2]) << 8 | u64::from(header[3]);
    Some((opcode, len))
}

/// Whether a data frame starting with `prefix` is a WAMP EVENT.
fn is_event(serializer: Serializer, prefix: &[u8]) -> bool {
    match serializer {
        Serializer::Json => prefix.starts_with(b"[36,"),
        // A fixarray header then the positive fixint 36.
        Serializer::Msgpack => {
            prefix.len() >= 2 && prefix[0] & 0xF0 == 0x90 && u64::from(prefix[1]) == code::EVENT
        }
    }
}

/// A client close frame (status 1000), masked as RFC 6455 requires of clients.
pub fn close_frame() -> [u8; 8] {
    let mask = [0x5A, 0xC3, 0x91, 0x27];
    let code = 1000u16.to_be_bytes();
    [
        0x88,
        0x82,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        code[0] ^ mask[0],
        code[1] ^ mask[1],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => bytes.push(n as u8),
            n if n <= 0xFFFF => {
                bytes.push(126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn counts_events_split_at_every_byte() {
        let big = format!("[36,1,2,{{}},[\"{}\"]]", "y".repeat(70_000));
        let mut stream = frame(1, b"[36,1,2,{},[1]]");
        stream.extend(frame(1, b"[17,5,9]"));
        stream.extend(frame(1, big.as_bytes()));
        stream.extend(frame(1, &[b'x'; 300]));
        stream.extend(frame(9, b""));
        stream.extend(frame(8, &[3, 232]));
        for chunk in [1, 2, 3, 7, 4096, stream.len()] {
            let mut counter = FrameCounter::new(Serializer::Json);
            for piece in stream.chunks(chunk) {
                counter.feed(piece);
            }
            assert_eq!(
                (counter.events, counter.other, counter.closed),
                (2, 2, true),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn counts_rawsocket_events_split_at_every_byte() {
        use crate::rawsocket::{frame_header, message_frame, FRAME_PING};
        let big = format!("[36,1,2,{{}},[\"{}\"]]", "y".repeat(70_000));
        let mut stream = message_frame(b"[36,1,2,{},[1]]");
        stream.extend(message_frame(b"[17,5,9]"));
        stream.extend(message_frame(big.as_bytes()));
        stream.extend(frame_header(FRAME_PING, 3));
        stream.extend(b"abc");
        stream.extend(message_frame(b""));
        stream.extend(message_frame(b"[36,1,3,{},[2]]"));
        for chunk in [1, 2, 3, 5, 4096, stream.len()] {
            let mut counter = FrameCounter::over(Transport::Rawsocket, Serializer::Json);
            for piece in stream.chunks(chunk) {
                counter.feed(piece);
            }
            assert_eq!(
                (counter.events, counter.other, counter.closed),
                (3, 2, false),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn recognises_msgpack_events() {
        let event = Serializer::Msgpack.encode(&serde_json::json!([36, 1, 2, {}, [1]]));
        let mut counter = FrameCounter::new(Serializer::Msgpack);
        counter.feed(&frame(2, &event.into_data()));
        assert_eq!(counter.events, 1);
    }
}

//! The receiving half of a ZeroMQ PULL socket: ZMTP 3.x (RFC 37) with the NULL mechanism, written for
//! hostile peers. Every length a peer declares is checked against a bound before a byte is allocated
//! for it, and a message is never held beyond its first two frames:
//!
//! - a command (the READY of the handshake, a PING) is at most [`MAX_COMMAND_BYTES`];
//! - a frame declaring more than [`Limits::max_frame`] bytes ends the connection unread;
//! - the signature frame is kept only up to [`Limits::max_signature`], the event frame up to
//!   [`Limits::max_frame`]; anything else (a one-frame message, a third frame) is read into a small
//!   scratch buffer and dropped, so a peer that sends endless MORE frames costs read bandwidth, not
//!   memory.
//!
//! We use this instead of a ZeroMQ library on the listening side because neither bounds that: zmq.rs
//! reserves whatever length a frame declares (a 2^40-byte header aborts the process), and libzmq, whose
//! `ZMQ_MAXMSGSIZE` bounds each frame, buffers all frames of a multipart message until the last one
//! arrives (measured: 512 MiB of MORE frames grew a libzmq PULL's RSS by 512 MiB). Peers are ordinary
//! ZeroMQ PUSH sockets (libzmq, pyzmq, zmq.rs): they see a ZMTP 3.0 PULL.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Length of a ZMTP 3 greeting.
pub const GREETING_LEN: usize = 64;
/// Largest command accepted (a READY carries the socket type and a few metadata properties).
pub const MAX_COMMAND_BYTES: u64 = 16 * 1024;
/// Bytes read at a time from the socket (also the most a dropped frame costs at once).
const READ_BUFFER: usize = 64 * 1024;

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// Why a connection was ended. The peer sees the TCP connection close, as libzmq does it.
#[derive(Debug, thiserror::Error)]
pub enum ZmtpError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer is not a ZMTP 3 peer using the NULL mechanism.
    #[error("greeting: {0}")]
    Greeting(&'static str),
    /// The READY exchange failed.
    #[error("handshake: {0}")]
    Handshake(String),
    /// A frame or command declared more bytes than allowed; nothing of it was read.
    #[error("a frame declares {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The declared length.
        size: u64,
        /// The limit it broke.
        limit: u64,
    },
    /// Reserved flag bits were set: the peer does not speak ZMTP 3.
    #[error("frame flags {0:#04x} have reserved bits set")]
    Flags(u8),
}

impl ZmtpError {
    /// A short tag for the refusal counter.
    pub fn which(&self) -> &'static str {
        match self {
            ZmtpError::Io(_) => "connection",
            ZmtpError::Greeting(_) | ZmtpError::Handshake(_) | ZmtpError::Flags(_) => "protocol",
            ZmtpError::TooLarge { .. } => "too_large",
        }
    }
}

/// What one connection may make the gateway hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest signature frame kept (a valid one is about 200 bytes).
    pub max_signature: usize,
    /// Largest frame of any kind: `[gateway] max_message_bytes`, the largest event the router takes.
    pub max_frame: usize,
}

/// One message from the peer: the two frames the gateway expects, or why it was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// `[signature, event]`.
    Message {
        /// The first frame.
        signature: Vec<u8>,
        /// The second frame.
        body: Vec<u8>,
    },
    /// A message of another shape; its frames were dropped as they arrived.
    Refused {
        /// Short tag for counters.
        which: &'static str,
        /// For the log.
        reason: String,
    },
}

/// A handshaken ZMTP connection from a PUSH peer.
pub struct Zmtp<S> {
    stream: BufReader<S>,
    limits: Limits,
}

struct Header {
    more: bool,
    command: bool,
    size: u64,
}

/// Our greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
pub fn greeting() -> [u8; GREETING_LEN] {
    let mut greeting = [0u8; GREETING_LEN];
    greeting[0] = 0xFF;
    greeting[9] = 0x7F;
    greeting[10] = 3;
    greeting[12..16].copy_from_slice(b"NULL");
    greeting
}

fn check_greeting(greeting: &[u8; GREETING_LEN]) -> Result<(), ZmtpError> {
    if greeting[0] != 0xFF || greeting[9] & 0x01 != 0x01 {
        return Err(ZmtpError::Greeting("not a ZMTP signature"));
    }
    if greeting[10] < 3 {
        return Err(ZmtpError::Greeting("ZMTP 3.0 or later is required"));
    }
    let mechanism = &greeting[12..32];
    if !(mechanism.starts_with(b"NULL") && mechanism[4..].iter().all(|&b| b == 0)) {
        return Err(ZmtpError::Greeting("only the NULL mechanism is supported"));
    }
    Ok(())
}

/// A command frame: short flags, name, properties (name length byte, name, u32 value length, value).
fn command(name: &str, properties: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    for (key, value) in properties {
        body.push(key.len() as u8);
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut frame = vec![FLAG_COMMAND, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// The command's name and its body after the name, or None when the name's length overruns it.
fn split_command(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = body.split_first()?;
    (rest.len() >= len as usize).then(|| rest.split_at(len as usize))
}

/// The value of property `wanted` in a READY's properties.
fn property<'a>(mut properties: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>, ZmtpError> {
    let bad = || ZmtpError::Handshake("malformed READY properties".to_string());
    while !properties.is_empty() {
        let (name, rest) = split_command(properties).ok_or_else(bad)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (value, rest) = rest.split_at(len);
        if name.eq_ignore_ascii_case(wanted.as_bytes()) {
            return Ok(Some(value));
        }
        properties = rest;
    }
    Ok(None)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Zmtp<S> {
    /// Greets the peer and exchanges READY; only a PUSH peer is accepted.
    pub async fn handshake(stream: S, limits: Limits) -> Result<Self, ZmtpError> {
        let mut zmtp = Zmtp {
            stream: BufReader::with_capacity(READ_BUFFER, stream),
            limits,
        };
        zmtp.stream.write_all(&greeting()).await?;
        let mut peer = [0u8; GREETING_LEN];
        zmtp.stream.read_exact(&mut peer).await?;
        check_greeting(&peer)?;
        let ready = command("READY", &[("Socket-Type", b"PULL")]);
        zmtp.stream.write_all(&ready).await?;
        let header = zmtp.header().await?;
        let body = zmtp.command_body(header.size).await?;
        if !header.command {
            return Err(ZmtpError::Handshake("expected READY, got a message".into()));
        }
        match split_command(&body) {
            Some((b"READY", properties)) => match property(properties, "Socket-Type")? {
                Some(b"PUSH") => Ok(zmtp),
                Some(other) => Err(ZmtpError::Handshake(format!(
                    "a {} socket cannot send to PULL (PUSH can)",
                    String::from_utf8_lossy(other)
                ))),
                None => Err(ZmtpError::Handshake("READY names no Socket-Type".into())),
            },
            _ => Err(ZmtpError::Handshake("expected READY".into())),
        }
    }

    async fn header(&mut self) -> Result<Header, ZmtpError> {
        let flags = self.stream.read_u8().await?;
        if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
            return Err(ZmtpError::Flags(flags));
        }
        let size = if flags & FLAG_LONG != 0 {
            self.stream.read_u64().await?
        } else {
            u64::from(self.stream.read_u8().await?)
        };
        Ok(Header {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            size,
        })
    }

    async fn command_body(&mut self, size: u64) -> Result<Vec<u8>, ZmtpError> {
        if size > MAX_COMMAND_BYTES {
            return Err(ZmtpError::TooLarge {
                size,
                limit: MAX_COMMAND_BYTES,
            });
        }
        self.read_frame(size).await
    }

    /// Reads `size` bytes, already checked against a limit; memory grows only as bytes arrive.
    async fn read_frame(&mut self, size: u64) -> Result<Vec<u8>, ZmtpError> {
        let mut frame = Vec::with_capacity(size.min(READ_BUFFER as u64) as usize);
        (&mut self.stream)
            .take(size)
            .read_to_end(&mut frame)
            .await?;
        if frame.len() as u64 != size {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        Ok(frame)
    }

    async fn skip_frame(&mut self, size: u64) -> Result<(), ZmtpError> {
        let skipped =
            tokio::io::copy(&mut (&mut self.stream).take(size), &mut tokio::io::sink()).await?;
        if skipped != size {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        Ok(())
    }

    /// The next message. Commands in between are answered (PING) or ignored; an error ends the
    /// connection.
    pub async fn receive(&mut self) -> Result<Received, ZmtpError> {
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(2);
        let mut frames = 0usize;
        let mut refused: Option<(&'static str, String)> = None;
        loop {
            let header = self.header().await?;
            if header.command {
                let body = self.command_body(header.size).await?;
                if let Some((b"PING", rest)) = split_command(&body) {
                    // PING: TTL (2 bytes), then up to 16 bytes of context that PONG echoes.
                    let context = rest.get(2..).unwrap_or_default();
                    let context = &context[..context.len().min(16)];
                    let mut pong = command("PONG", &[]);
                    pong.extend_from_slice(context);
                    pong[1] += context.len() as u8;
                    self.stream.write_all(&pong).await?;
                }
                continue;
            }
            let limit = self.limits.max_frame as u64;
            if header.size > limit {
                return Err(ZmtpError::TooLarge {
                    size: header.size,
                    limit,
                });
            }
            frames += 1;
            if refused.is_none() {
                refused = match (frames, header.more) {
                    (1, true) if header.size > self.limits.max_signature as u64 => Some((
                        "malformed",
                        format!(
                            "signature frame of {} bytes (at most {})",
                            header.size, self.limits.max_signature
                        ),
                    )),
                    (1, true) | (2, false) => None,
                    _ => {
                        kept.clear();
                        Some(("frames", String::new()))
                    }
                };
            }
            if refused.is_none() {
                kept.push(self.read_frame(header.size).await?);
            } else {
                self.skip_frame(header.size).await?;
            }
            if !header.more {
                break;
            }
        }
        if let Some((which, mut reason)) = refused {
            if which == "frames" {
                reason = format!("expected 2 frames [signature, event], got {frames}");
            }
            return Ok(Received::Refused { which, reason });
        }
        let body = kept.pop().unwrap_or_default();
        let signature = kept.pop().unwrap_or_default();
        Ok(Received::Message { signature, body })
    }
}

#[cfg(test)]
mod tests;

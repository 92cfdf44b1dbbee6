//! The receiver against hand-written peers over an in-memory pipe: what a PUSH peer sends byte by byte.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

const LIMITS: Limits = Limits {
    max_signature: 512,
    max_frame: 4096,
};

fn ready(socket_type: &str) -> Vec<u8> {
    command("READY", &[("Socket-Type", socket_type.as_bytes())])
}

fn frame(more: bool, payload: &[u8]) -> Vec<u8> {
    let flags = if more { FLAG_MORE } else { 0 };
    let mut out = if payload.len() > 255 {
        let mut out = vec![flags | FLAG_LONG];
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        out
    } else {
        vec![flags, payload.len() as u8]
    };
    out.extend_from_slice(payload);
    out
}

/// A peer that has sent its greeting and READY; the gateway side is handshaken.
async fn connected() -> (Zmtp<DuplexStream>, DuplexStream) {
    let (server, mut peer) = duplex(1 << 20);
    peer.write_all(&greeting()).await.unwrap();
    peer.write_all(&ready("PUSH")).await.unwrap();
    let zmtp = Zmtp::handshake(server, LIMITS).await.expect("handshake");
    let mut answer = vec![0u8; GREETING_LEN + ready("PULL").len()];
    peer.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer[..GREETING_LEN], &greeting());
    assert_eq!(&answer[GREETING_LEN..], &ready("PULL")[..]);
    (zmtp, peer)
}

#[tokio::test]
async fn a_push_peer_gets_its_two_frame_messages_through_in_order() {
    let (mut zmtp, mut peer) = connected().await;
    for i in 0..3u8 {
        let mut bytes = frame(true, b"t=1,n=abcdefgh,s=00");
        bytes.extend(frame(false, &vec![i; 300]));
        peer.write_all(&bytes).await.unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(
            zmtp.receive().await.unwrap(),
            Received::Message {
                signature: b"t=1,n=abcdefgh,s=00".to_vec(),
                body: vec![i; 300]
            }
        );
    }
}

#[tokio::test]
async fn the_hostile_73_byte_packet_ends_the_connection_unallocated() {
    let (server, mut peer) = duplex(1 << 16);
    let mut packet = greeting().to_vec();
    packet.push(FLAG_LONG);
    packet.extend_from_slice(&(1u64 << 40).to_be_bytes());
    assert_eq!(packet.len(), 73);
    peer.write_all(&packet).await.unwrap();
    match Zmtp::handshake(server, LIMITS).await {
        Err(ZmtpError::TooLarge { size, .. }) => assert_eq!(size, 1 << 40),
        Err(other) => panic!("expected TooLarge, got {other}"),
        Ok(_) => panic!("the handshake must fail"),
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_ends_the_connection() {
    let (mut zmtp, mut peer) = connected().await;
    let mut header = vec![FLAG_MORE | FLAG_LONG];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    peer.write_all(&header).await.unwrap();
    let error = zmtp.receive().await.unwrap_err();
    assert_eq!(error.which(), "too_large", "{error}");
    assert!(error.to_string().contains("67108864"), "{error}");
}

#[tokio::test]
async fn other_shapes_are_refused_and_the_connection_goes_on() {
    let (mut zmtp, mut peer) = connected().await;
    let mut bytes = frame(false, b"just a body");
    bytes.extend(frame(true, b"sig"));
    for _ in 0..999 {
        bytes.extend(frame(true, &[7u8; 1000]));
    }
    bytes.extend(frame(false, b"last"));
    bytes.extend(frame(true, &[b's'; 600]));
    bytes.extend(frame(false, b"{}"));
    bytes.extend(frame(true, b"sig"));
    bytes.extend(frame(false, b"{}"));
    let writer = tokio::spawn(async move {
        peer.write_all(&bytes).await.unwrap();
        peer
    });
    let refused = |which: &'static str, reason: &str| Received::Refused {
        which,
        reason: reason.to_string(),
    };
    assert_eq!(
        zmtp.receive().await.unwrap(),
        refused("frames", "expected 2 frames [signature, event], got 1")
    );
    assert_eq!(
        zmtp.receive().await.unwrap(),
        refused("frames", "expected 2 frames [signature, event], got 1001")
    );
    assert_eq!(
        zmtp.receive().await.unwrap(),
        refused("malformed", "signature frame of 600 bytes (at most 512)")
    );
    assert_eq!(
        zmtp.receive().await.unwrap(),
        Received::Message {
            signature: b"sig".to_vec(),
            body: b"{}".to_vec()
        }
    );
    writer.await.unwrap();
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_its_context() {
    let (mut zmtp, mut peer) = connected().await;
    let mut ping = command("PING", &[]);
    ping.extend_from_slice(&[0, 10]);
    ping.extend_from_slice(b"ctx");
    ping[1] += 5;
    peer.write_all(&ping).await.unwrap();
    let mut bytes = frame(true, b"s");
    bytes.extend(frame(false, b"b"));
    peer.write_all(&bytes).await.unwrap();
    assert!(matches!(
        zmtp.receive().await.unwrap(),
        Received::Message { .. }
    ));
    let mut pong = vec![0u8; 2 + 5 + 3];
    peer.read_exact(&mut pong).await.unwrap();
    assert_eq!(pong, b"\x04\x08\x04PONGctx");
}

#[tokio::test]
async fn only_push_peers_with_null_are_accepted() {
    for (peer_greeting, peer_ready, expected) in [
        (greeting(), ready("PUB"), "a PUB socket cannot send to PULL"),
        (
            greeting(),
            command("READY", &[]),
            "READY names no Socket-Type",
        ),
        (
            {
                let mut g = greeting();
                g[12..17].copy_from_slice(b"PLAIN");
                g
            },
            ready("PUSH"),
            "only the NULL mechanism",
        ),
        (
            {
                let mut g = greeting();
                g[10] = 2;
                g
            },
            ready("PUSH"),
            "ZMTP 3.0 or later",
        ),
    ] {
        let (server, mut peer) = duplex(1 << 16);
        peer.write_all(&peer_greeting).await.unwrap();
        peer.write_all(&peer_ready).await.unwrap();
        match Zmtp::handshake(server, LIMITS).await {
            Err(error) => assert!(error.to_string().contains(expected), "{error}"),
            Ok(_) => panic!("accepted, expected {expected}"),
        }
    }
}

//! The HTTP front against clients that misbehave, with the real binary: half-sent requests are closed
//! after `header_timeout_ms`, connections past `max_connections` get 503 (and /healthz answers again
//! once some close), and SIGTERM ends the process within `shutdown_grace_ms` whatever clients do.

mod front_support;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use front_support::{connect, get, wait_for_sample, wait_for_sample_when_busy};
use support::{Gateway, RawClient, OPEN_REALM};

const REFUSED_HEADER_TIMEOUT: &str =
    "switchboard_connections_refused_total{reason=\"header_timeout\"}";
const REFUSED_MAX_CONNECTIONS: &str =
    "switchboard_connections_refused_total{reason=\"max_connections\"}";

/// A request cut off in the middle of its header block (the final empty line never comes).
const HALF_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Reads until the gateway closes the connection; returns how long that took, or None if it was still
/// open after the read timeout.
fn time_until_closed(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            // hyper may answer 408 before closing; keep reading until the close.
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => {
                return Some(started.elapsed())
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(error) => panic!("unexpected read error: {error}"),
        }
    }
}

fn sigterm(gateway: &Gateway) {
    let pid = libc::pid_t::try_from(gateway.child.id()).expect("a pid");
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
}

/// Waits for the gateway process to exit; returns its exit success, or None if still running at `limit`.
fn wait_exit(gateway: &mut Gateway, limit: Duration) -> Option<bool> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = gateway.child.try_wait().expect("try_wait") {
            return Some(status.success());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let gateway = Gateway::start("header_timeout_ms = 500", OPEN_REALM);
    let mut half = connect(gateway.port);
    half.write_all(HALF_REQUEST).expect("half a request");
    let mut silent = connect(gateway.port);

    // Meanwhile a complete request is served as usual.
    assert_eq!(get(gateway.port, "/healthz"), (200, "ok\n".to_string()));

    let waited = time_until_closed(&mut half).expect("closed within 10 s");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "a half-sent request should be closed about 500 ms after it started, took {waited:?}"
    );
    let waited = time_until_closed(&mut silent).expect("closed within 10 s");
    assert!(
        waited < Duration::from_secs(3),
        "a connection that sends nothing is closed too, took {waited:?}"
    );
    // Both are counted; the complete request and the scrapes are not.
    wait_for_sample(gateway.port, REFUSED_HEADER_TIMEOUT, |n| n == 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_clients_get_503_until_some_close() {
    let gateway = Gateway::start("max_connections = 3", OPEN_REALM);
    let port = gateway.port;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(RawClient::joined(&gateway.url()).await.0);
    }

    let (status, body) = tokio::task::spawn_blocking(move || get(port, "/healthz"))
        .await
        .expect("request");
    assert_eq!(status, 503, "connection 4 of 3 is refused");
    assert!(body.contains("too many connections"), "503 body: {body:?}");

    let mut closed = sessions.pop().expect("a session");
    closed.socket.close(None).await.expect("close sent");
    closed.recv_until_closed().await;

    // The slot is freed once the gateway has dropped the socket, a moment after the close handshake.
    let mut refusals = 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = tokio::task::spawn_blocking(move || get(port, "/healthz").0)
            .await
            .expect("request");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 503 while full");
        refusals += 1;
        assert!(
            Instant::now() < deadline,
            "/healthz still answers {status} 5 s after a session closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection that got 200 may still hold its slot for a moment, so scrapes may get 503 too.
    let (counted, refused_scrapes) = tokio::task::spawn_blocking(move || {
        wait_for_sample_when_busy(port, REFUSED_MAX_CONNECTIONS, |n| n >= 1.0)
    })
    .await
    .expect("scrape");
    assert_eq!(
        counted,
        f64::from(refusals + refused_scrapes),
        "every 503 is counted"
    );
    drop(sessions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_grace_period_whatever_clients_do() {
    // A header timeout far beyond the grace period: only the grace period can end these connections.
    let mut gateway = Gateway::start(
        "header_timeout_ms = 60000\nshutdown_grace_ms = 1000",
        OPEN_REALM,
    );
    let port = gateway.port;
    let (half_sent, idle) = tokio::task::spawn_blocking(move || {
        let half_sent: Vec<TcpStream> = (0..200)
            .map(|_| {
                let mut stream = connect(port);
                stream.write_all(HALF_REQUEST).expect("half a request");
                stream
            })
            .collect();
        // An idle keep-alive connection, after one complete request.
        let mut idle = connect(port);
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("request");
        let mut response = [0u8; 256];
        let n = idle.read(&mut response).expect("response");
        assert!(
            response[..n].starts_with(b"HTTP/1.1 200"),
            "keep-alive answered"
        );
        (half_sent, idle)
    })
    .await
    .expect("clients");
    // A joined session that will never read its GOODBYE, let alone answer it.
    let (deaf, _) = RawClient::joined(&gateway.url()).await;
    // All of them accepted (not waiting in the listen backlog), plus the scrape itself.
    tokio::task::spawn_blocking(move || {
        wait_for_sample(port, "switchboard_connections", |n| n >= 203.0)
    })
    .await
    .expect("scrape");

    let started = Instant::now();
    sigterm(&gateway);
    let exited = tokio::task::spawn_blocking(move || {
        let exited = wait_exit(&mut gateway, Duration::from_secs(10));
        (exited, gateway)
    })
    .await
    .expect("waited");
    let elapsed = started.elapsed();
    let (exited, gateway) = exited;
    assert_eq!(
        exited,
        Some(true),
        "the gateway should exit cleanly within 1 s grace + margin (still running after 10 s: None)"
    );
    assert!(
        elapsed < Duration::from_millis(1000 + 1500),
        "exit took {elapsed:?}, grace is 1000 ms"
    );
    assert!(
        gateway.log_contains("shutdown grace period"),
        "the log says why it did not wait longer"
    );
    drop((half_sent, idle, deaf));
}

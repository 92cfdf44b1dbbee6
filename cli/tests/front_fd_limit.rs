//! The open-file limit, with the real binary: started under a soft limit of 1,024 (a common default),
//! the gateway raises it to the hard limit, so 2,000 clients holding half-sent requests lock nobody
//! out. In its own test binary: it changes the test process's own limit while spawning the gateway.

mod front_support;
mod support;

use std::io::Write;
use std::net::TcpStream;

use front_support::{connect, get, wait_for_sample};
use support::{Gateway, OPEN_REALM};

const HALF_SENT: usize = 2000;

/// Sets this process's soft open-file limit (inherited by children spawned meanwhile).
fn set_soft_limit(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only access the struct they are given, which lives for the calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

#[test]
fn two_thousand_half_sent_requests_under_a_1024_soft_limit_lock_nobody_out() {
    let ours = switchboard_gateway::fd_limit::raise_to_hard_limit().expect("rlimit");
    if ours.hard < 2 * HALF_SENT as u64 + 200 {
        eprintln!(
            "SKIPPED: the hard open-file limit ({}) is too low for this test",
            ours.hard
        );
        return;
    }
    set_soft_limit(1024);
    let gateway = Gateway::start("header_timeout_ms = 60000", OPEN_REALM);
    set_soft_limit(ours.hard);

    let half_sent: Vec<TcpStream> = (0..HALF_SENT)
        .map(|_| {
            let mut stream = connect(gateway.port);
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .expect("half a request");
            stream
        })
        .collect();
    // All accepted (each one a file descriptor in the gateway), and a new client is still served.
    wait_for_sample(gateway.port, "switchboard_connections", |n| {
        n >= (HALF_SENT + 1) as f64
    });
    assert_eq!(get(gateway.port, "/healthz"), (200, "ok\n".to_string()));

    // They are released as the clients go (the header timeout's own test is in front_connections.rs).
    drop(half_sent);
    wait_for_sample(gateway.port, "switchboard_connections", |n| n == 1.0);
}

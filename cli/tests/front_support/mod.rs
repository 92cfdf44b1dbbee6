//! Plain HTTP/1.1 over std sockets for the HTTP front's tests: requests written by hand, so that tests
//! control exactly what a (mis)behaving client sends, and a reader for `/metrics`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection to the gateway with a 10 s read timeout.
pub(crate) fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// GET `path` on a fresh connection; returns (status, raw header block, body).
pub(crate) fn get_full(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = connect(port);
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    (status, head.to_string(), body.to_string())
}

/// GET `path` on a fresh connection; returns (status, body).
pub(crate) fn get(port: u16, path: &str) -> (u16, String) {
    let (status, _, body) = get_full(port, path);
    (status, body)
}

/// The value of the sample `series` (name with its labels, as rendered: `name{reason="x"}`) in a
/// Prometheus text exposition.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Scrapes `/metrics` until `series` satisfies `wanted`, for up to 10 s; panics with the last value
/// otherwise.
pub(crate) fn wait_for_sample(port: u16, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    wait_for_sample_when_busy(port, series, wanted).0
}

/// [`wait_for_sample`] on a gateway at its `max_connections`: a scrape refused with 503 is retried.
/// Returns the value and how many scrapes were refused before it was read.
pub(crate) fn wait_for_sample_when_busy(
    port: u16,
    series: &str,
    wanted: impl Fn(f64) -> bool,
) -> (f64, u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = 0;
    loop {
        let (status, body) = get(port, "/metrics");
        let value = match status {
            200 => sample(&body, series),
            503 => {
                refused += 1;
                None
            }
            _ => panic!("/metrics answered {status}: {body}"),
        };
        if let Some(value) = value.filter(|v| wanted(*v)) {
            return (value, refused);
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {value:?} after 10 s of scraping"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! `GET /switchboard.js` from the running binary: the embedded client with its content type, open CORS,
//! an ETag and `no-cache`, and 304 for a matching `If-None-Match`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Gateway, OPEN_REALM};

/// One HTTP/1.1 request; returns (status, lower-cased headers, body).
fn get(port: u16, extra_headers: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "GET /switchboard.js HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://other.example\r\n{extra_headers}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn serves_the_client_with_cors_and_validators_and_answers_304() {
    let gateway = Gateway::start("", OPEN_REALM);
    let source = include_str!("../../js-client/switchboard.js");

    let (status, headers, body) = get(gateway.port, "");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    assert_eq!(
        body, source,
        "the body is the embedded js-client/switchboard.js"
    );
    let etag = header(&headers, "etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);

    let (status, headers, body) = get(gateway.port, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(status, 304);
    assert!(body.is_empty(), "304 has no body");
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));

    let (status, _, _) = get(gateway.port, &format!("If-None-Match: W/{etag}\r\n"));
    assert_eq!(status, 304, "weak comparison");

    let (status, _, body) = get(gateway.port, "If-None-Match: \"stale\"\r\n");
    assert_eq!(status, 200, "a stale validator gets the content");
    assert_eq!(body, source);
}

//! `GET /switchboard.js`: the browser client (`js-client/switchboard.js`), embedded in the binary at build
//! time and served with CORS open to every origin (a page on another origin imports it as an ES module),
//! a strong ETag from the content's hash, `Cache-Control: no-cache` (revalidate every time) and 304 for a
//! matching `If-None-Match`.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The client library's source, as built into this binary.
pub const SOURCE: &str = include_str!("../../../js-client/switchboard.js");

/// The content type the client is served with.
pub const CONTENT_TYPE: &str = "text/javascript; charset=utf-8";

/// The strong ETag of [`SOURCE`]: the first 128 bits of its SHA-256, quoted.
pub fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(SOURCE.as_bytes());
        format!("\"{}\"", hex::encode(&digest[..16]))
    })
}

/// True when an `If-None-Match` value names our ETag (or is `*`); weak validators compare equal too
/// (RFC 9110's weak comparison, which is the one `If-None-Match` uses).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Answers `GET /switchboard.js` (and HEAD, which axum derives from GET).
pub async fn serve(headers: HeaderMap) -> Response {
    let etag = etag();
    let common = [
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
    ];
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| matches(value, etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        SOURCE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = etag();
        assert!(matches(tag, tag));
        assert!(matches(&format!("W/{tag}"), tag));
        assert!(matches(&format!("\"other\", {tag}"), tag));
        assert!(matches("*", tag));
        assert!(!matches("\"other\"", tag));
        assert!(!matches("", tag));
    }

    #[test]
    fn etag_is_a_quoted_hash() {
        let tag = etag();
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
    }
}

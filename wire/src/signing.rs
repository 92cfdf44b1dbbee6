//! Message signatures (DESIGN.md section 5): `t=<unix seconds>,n=<nonce>,s=<hex HMAC-SHA256(secret,
//! "<t>.<n>.<body>")>`. Emitters sign every message with [`Signer`]; the gateway checks every message with
//! [`Verifier`], which refuses missing, malformed, wrong, too old and replayed signatures and says which.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::replay::ReplayCache;

pub(crate) type HmacSha256 = hmac::Hmac<Sha256>;

/// Name of the HTTP header (JSON-RPC) carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";

/// Name of the AMQP message header carrying the signature.
pub const AMQP_SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// Shortest and longest accepted nonce, in characters.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=128;

/// Replay-cache entries a verifier keeps at most unless told otherwise.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// Why a signature was refused. The variants are the "which" of a `-32001` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature came with the message.
    #[error("signature missing")]
    Missing,
    /// The signature does not have the `t=..,n=..,s=..` shape.
    #[error("signature malformed: {0}")]
    Malformed(String),
    /// The MAC does not match the body (wrong secret, or the body was changed).
    #[error("signature invalid: the MAC does not match the body")]
    Invalid,
    /// The timestamp is further from now than the allowed skew.
    #[error(
        "signature expired: timestamp {timestamp} is {age_s} s away from now (max {max_skew_s} s)"
    )]
    Expired {
        /// The signed timestamp.
        timestamp: u64,
        /// Distance from the verifier's clock, in seconds.
        age_s: u64,
        /// The allowed skew.
        max_skew_s: u64,
    },
    /// The nonce was already used within the skew window.
    #[error("signature replayed: nonce {0:?} was already used")]
    Replayed(String),
    /// Under sustained load the replay cache forgot nonces early and shrank its window; this signature
    /// is older than what it can still judge (see the replay module). Senders that sign just before
    /// sending never see this.
    #[error(
        "signature stale: it expires at {expiry}, within the replay window the gateway had to shrink under load (up to {floor})"
    )]
    Stale {
        /// The signature's timestamp plus the allowed skew.
        expiry: u64,
        /// The latest expiry among nonces forgotten early.
        floor: u64,
    },
}

impl SignatureError {
    /// One word saying which check failed, for logs and counters.
    pub fn which(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::Invalid => "invalid",
            SignatureError::Expired { .. } => "expired",
            SignatureError::Replayed(_) => "replayed",
            SignatureError::Stale { .. } => "stale",
        }
    }
}

/// An HMAC-SHA256 keyed with `secret`, fed `parts` in order (shared by signatures and tickets).
pub(crate) fn keyed_mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn mac(secret: &[u8], timestamp: u64, nonce: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed_mac(secret, &[]);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Signs message bodies with the shared secret; what every emitter transport uses.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { secret: <redacted> }")
    }
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Signer {
            secret: secret.as_ref().to_vec(),
        }
    }

    /// The signature of `body` now, with a fresh random nonce.
    pub fn sign(&self, body: &[u8]) -> String {
        let nonce = hex::encode(rand::rng().random::<[u8; 16]>());
        self.sign_with(body, unix_now(), &nonce)
    }

    /// The signature of `body` for a given timestamp and nonce (tests, and foreign-language parity).
    pub fn sign_with(&self, body: &[u8], timestamp: u64, nonce: &str) -> String {
        let tag = mac(&self.secret, timestamp, nonce, body)
            .finalize()
            .into_bytes();
        format!("t={timestamp},n={nonce},s={}", hex::encode(tag))
    }
}

/// A parsed signature header.
struct Parsed<'a> {
    timestamp: u64,
    nonce: &'a str,
    tag: Vec<u8>,
}

fn parse(header: &str) -> Result<Parsed<'_>, SignatureError> {
    let malformed = |reason: &str| SignatureError::Malformed(reason.to_string());
    let (mut t, mut n, mut s) = (None, None, None);
    for part in header.trim().split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("expected t=<unix>,n=<nonce>,s=<hex>"))?;
        let slot = match key {
            "t" => &mut t,
            "n" => &mut n,
            "s" => &mut s,
            _ => return Err(malformed(&format!("unknown part {key:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(&format!("part {key:?} appears twice")));
        }
    }
    let t = t.ok_or_else(|| malformed("no t= (timestamp)"))?;
    let n = n.ok_or_else(|| malformed("no n= (nonce)"))?;
    let s = s.ok_or_else(|| malformed("no s= (MAC)"))?;
    let timestamp = t
        .parse::<u64>()
        .map_err(|_| malformed("t= is not a unix time in seconds"))?;
    if !NONCE_LEN.contains(&n.len())
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(malformed("n= must be 8 to 128 characters of [A-Za-z0-9_-]"));
    }
    let tag = hex::decode(s).map_err(|_| malformed("s= is not hex"))?;
    if tag.len() != 32 {
        return Err(malformed("s= is not 64 hex digits (HMAC-SHA256)"));
    }
    Ok(Parsed {
        timestamp,
        nonce: n,
        tag,
    })
}

/// Checks signatures for the gateway: MAC in constant time, timestamp within `max_skew_s` of now, nonce
/// not seen within the window. Shared by all ingestion transports (one replay cache for all of them, so a
/// message captured on one transport cannot be replayed on another).
pub struct Verifier {
    secret: Vec<u8>,
    max_skew_s: u64,
    nonces: Mutex<ReplayCache>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("max_skew_s", &self.max_skew_s)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `secret` accepting timestamps up to `max_skew_s` seconds from now, remembering at
    /// most [`DEFAULT_REPLAY_CAPACITY`] nonces.
    pub fn new(secret: impl AsRef<[u8]>, max_skew_s: u64) -> Self {
        Self::with_capacity(secret, max_skew_s, DEFAULT_REPLAY_CAPACITY)
    }

    /// Like [`Verifier::new`] with an explicit bound on remembered nonces.
    pub fn with_capacity(secret: impl AsRef<[u8]>, max_skew_s: u64, capacity: usize) -> Self {
        Verifier {
            secret: secret.as_ref().to_vec(),
            max_skew_s,
            nonces: Mutex::new(ReplayCache::new(capacity)),
        }
    }

    /// Checks `header` (None when the message had none) against `body` at the current time.
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        self.verify_at(header, body, unix_now())
    }

    /// Checks what needs no body: `header` is present, well-formed and fresh. A server calls this
    /// before reading a request body, so unsigned or stale requests cost it nothing but their headers;
    /// [`Verifier::verify`] must still check the body.
    pub fn check_header(&self, header: Option<&str>) -> Result<(), SignatureError> {
        self.fresh(header, unix_now()).map(|_| ())
    }

    /// The parsed header, if present, well-formed and within `max_skew_s` of `now`.
    fn fresh<'h>(&self, header: Option<&'h str>, now: u64) -> Result<Parsed<'h>, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let parsed = parse(header)?;
        let age_s = now.abs_diff(parsed.timestamp);
        if age_s > self.max_skew_s {
            return Err(SignatureError::Expired {
                timestamp: parsed.timestamp,
                age_s,
                max_skew_s: self.max_skew_s,
            });
        }
        Ok(parsed)
    }

    /// Checks `header` against `body` as if the time were `now` (unix seconds).
    pub fn verify_at(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), SignatureError> {
        let parsed = self.fresh(header, now)?;
        mac(&self.secret, parsed.timestamp, parsed.nonce, body)
            .verify_slice(&parsed.tag)
            .map_err(|_| SignatureError::Invalid)?;
        // Only authentic messages reach the cache, so nobody without the secret can fill it.
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.insert(parsed.nonce, parsed.timestamp + self.max_skew_s, now)
    }

    /// Nonces currently remembered (for metrics and tests).
    pub fn remembered_nonces(&self) -> usize {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"topic":"a.b"}"#;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed with Python: hmac.new(b"s3cret", b"1800000000.nonce123.{\"topic\":\"a.b\"}", sha256)
        let header = Signer::new("s3cret").sign_with(BODY, NOW, "nonce123");
        assert_eq!(
            header,
            "t=1800000000,n=nonce123,s=3d478874c873ebb6184f71436ae5945c02dfb881dde8e919c69782130d018d3d"
        );
        let verifier = Verifier::new("s3cret", 300);
        assert_eq!(verifier.verify_at(Some(&header), BODY, NOW), Ok(()));
    }

    #[test]
    fn fresh_signatures_verify_once() {
        let signer = Signer::new("k");
        let verifier = Verifier::new("k", 300);
        let header = signer.sign(BODY);
        assert_eq!(verifier.verify(Some(&header), BODY), Ok(()));
        assert_eq!(
            verifier.verify(Some(&header), BODY).unwrap_err().which(),
            "replayed"
        );
    }

    #[test]
    fn each_refusal_says_which_check_failed() {
        let signer = Signer::new("k");
        let verifier = Verifier::new("k", 300);
        let check = |header: Option<&str>, body: &[u8], now: u64| {
            verifier.verify_at(header, body, now).unwrap_err().which()
        };
        assert_eq!(check(None, BODY, NOW), "missing");
        assert_eq!(check(Some("garbage"), BODY, NOW), "malformed");
        assert_eq!(check(Some("t=1,n=abcdefgh"), BODY, NOW), "malformed");
        assert_eq!(check(Some("t=x,n=abcdefgh,s=00"), BODY, NOW), "malformed");
        assert_eq!(check(Some("t=1,n=short,s=00"), BODY, NOW), "malformed");
        assert_eq!(
            check(
                Some(&format!("t={NOW},n=abcdefgh,s={}", "zz".repeat(32))),
                BODY,
                NOW
            ),
            "malformed"
        );
        let good = signer.sign_with(BODY, NOW, "nonce-0001");
        assert_eq!(check(Some(&good), b"{\"topic\":\"a.c\"}", NOW), "invalid");
        let other_key = Signer::new("other").sign_with(BODY, NOW, "nonce-0002");
        assert_eq!(check(Some(&other_key), BODY, NOW), "invalid");
        let old = signer.sign_with(BODY, NOW - 301, "nonce-0003");
        assert_eq!(check(Some(&old), BODY, NOW), "expired");
        let future = signer.sign_with(BODY, NOW + 301, "nonce-0004");
        assert_eq!(check(Some(&future), BODY, NOW), "expired");
        let edge = signer.sign_with(BODY, NOW - 300, "nonce-0005");
        assert_eq!(verifier.verify_at(Some(&edge), BODY, NOW), Ok(()));
    }

    #[test]
    fn the_header_alone_refuses_missing_malformed_and_stale_signatures() {
        let signer = Signer::new("k");
        let verifier = Verifier::new("k", 300);
        let which = |header: Option<&str>| verifier.check_header(header).unwrap_err().which();
        assert_eq!(which(None), "missing");
        assert_eq!(which(Some("t=1,s=abc")), "malformed");
        let stale = signer.sign_with(BODY, unix_now() - 301, "nonce-0006");
        assert_eq!(which(Some(&stale)), "expired");
        // A fresh header passes whatever its MAC: only the body can tell, and the nonce is not spent.
        let forged = Signer::new("other").sign(BODY);
        assert_eq!(verifier.check_header(Some(&forged)), Ok(()));
        let good = signer.sign(BODY);
        assert_eq!(verifier.check_header(Some(&good)), Ok(()));
        assert_eq!(verifier.verify(Some(&good), BODY), Ok(()));
    }

    #[test]
    fn a_reused_nonce_is_refused_even_with_another_timestamp_or_body() {
        let signer = Signer::new("k");
        let verifier = Verifier::new("k", 300);
        let first = signer.sign_with(BODY, NOW, "same-nonce");
        assert_eq!(verifier.verify_at(Some(&first), BODY, NOW), Ok(()));
        let again = signer.sign_with(b"{}", NOW + 1, "same-nonce");
        assert_eq!(
            verifier.verify_at(Some(&again), b"{}", NOW + 1),
            Err(SignatureError::Replayed("same-nonce".into()))
        );
    }

    #[test]
    fn invalid_signatures_do_not_use_up_nonces() {
        let verifier = Verifier::new("k", 300);
        let forged = Signer::new("other").sign_with(BODY, NOW, "nonce-forged");
        assert!(verifier.verify_at(Some(&forged), BODY, NOW).is_err());
        assert_eq!(verifier.remembered_nonces(), 0);
        let real = Signer::new("k").sign_with(BODY, NOW, "nonce-forged");
        assert_eq!(verifier.verify_at(Some(&real), BODY, NOW), Ok(()));
    }

    #[test]
    fn nonces_are_forgotten_once_their_signature_would_be_expired_anyway() {
        let signer = Signer::new("k");
        let verifier = Verifier::new("k", 10);
        for i in 0..100 {
            let header = signer.sign_with(BODY, NOW, &format!("nonce-{i:04}"));
            verifier.verify_at(Some(&header), BODY, NOW).expect("fresh");
        }
        assert_eq!(verifier.remembered_nonces(), 100);
        let later = signer.sign_with(BODY, NOW + 11, "nonce-late");
        verifier
            .verify_at(Some(&later), BODY, NOW + 11)
            .expect("fresh");
        assert_eq!(verifier.remembered_nonces(), 1);
    }

    #[test]
    fn a_full_cache_keeps_accepting_fresh_signatures_and_refusing_replays() {
        let signer = Signer::new("k");
        let verifier = Verifier::with_capacity("k", 300, 2);
        let headers: Vec<String> = (0..5u64)
            .map(|i| signer.sign_with(BODY, NOW - 4 + i, &format!("nonce-{i:04}")))
            .collect();
        for header in &headers {
            verifier.verify_at(Some(header), BODY, NOW).expect("fresh");
        }
        for (i, header) in headers.iter().enumerate() {
            let verdict = verifier.verify_at(Some(header), BODY, NOW);
            assert!(
                matches!(
                    verdict,
                    Err(SignatureError::Replayed(_) | SignatureError::Stale { .. })
                ),
                "replay {i} must be refused, got {verdict:?}"
            );
        }
        let fresh = signer.sign_with(BODY, NOW, "nonce-new");
        verifier
            .verify_at(Some(&fresh), BODY, NOW)
            .expect("a new signature still passes");
    }
}

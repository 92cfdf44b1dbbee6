//! Connection tickets (DESIGN.md section 7): the web app, which has authenticated its user, mints a
//! signed, expiring token that the browser presents with WAMP ticket authentication. The token holds no
//! secret: `base64url(JSON {"authid", "roles", "exp"})` + `.` + hex HMAC-SHA256 over a fixed context
//! string and that base64 text, keyed with the shared `[security]` secret. The gateway checks it with the
//! same [`TicketKey`].

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::signing::{keyed_mac, unix_now, HmacSha256};

/// Domain separation: a ticket's MAC can never pass for an ingestion signature or the other way round.
const CONTEXT: &[u8] = b"switchboard.ticket.v1.";

/// Longest ticket the verifier looks at, in bytes.
pub const MAX_TICKET_BYTES: usize = 4096;

/// What a ticket says: who, with which roles, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketClaims {
    /// The user's authid.
    pub authid: String,
    /// Roles granted to the session (the first is its WAMP authrole).
    pub roles: Vec<String>,
    /// Expiry, unix seconds; the ticket is refused from this second on.
    pub exp: u64,
}

/// Why a ticket could not be minted or was refused. Messages never contain the secret or the MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The claims cannot make a ticket (empty authid, no role, zero ttl).
    #[error("cannot mint a ticket: {0}")]
    BadClaims(&'static str),
    /// The ticket does not have the `<base64url>.<hex>` shape or its payload is not the claims JSON.
    #[error("ticket malformed: {0}")]
    Malformed(&'static str),
    /// The MAC does not match (forged, altered, or minted with another secret).
    #[error("ticket signature invalid")]
    Invalid,
    /// The ticket's expiry has passed.
    #[error("ticket expired")]
    Expired,
    /// The ticket was minted for another authid than the one the session claims.
    #[error("ticket was issued for another authid")]
    WrongAuthid,
}

/// Mints and verifies tickets with the shared secret.
#[derive(Clone)]
pub struct TicketKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey { secret: <redacted> }")
    }
}

fn mac(secret: &[u8], payload: &str) -> HmacSha256 {
    keyed_mac(secret, &[CONTEXT, payload.as_bytes()])
}

impl TicketKey {
    /// A key for the shared `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        TicketKey {
            secret: secret.as_ref().to_vec(),
        }
    }

    /// A ticket for `authid` with `roles`, valid for `ttl` from now.
    pub fn mint<S: Into<String>>(
        &self,
        authid: impl Into<String>,
        roles: impl IntoIterator<Item = S>,
        ttl: Duration,
    ) -> Result<String, TicketError> {
        if ttl.is_zero() {
            return Err(TicketError::BadClaims("the ttl must be positive"));
        }
        let claims = TicketClaims {
            authid: authid.into(),
            roles: roles.into_iter().map(Into::into).collect(),
            exp: unix_now().saturating_add(ttl.as_secs().max(1)),
        };
        self.mint_claims(&claims)
    }

    /// A ticket carrying exactly `claims` (tests, and tickets with a fixed expiry).
    pub fn mint_claims(&self, claims: &TicketClaims) -> Result<String, TicketError> {
        if claims.authid.is_empty() {
            return Err(TicketError::BadClaims("the authid is empty"));
        }
        if claims.roles.is_empty() || claims.roles.iter().any(String::is_empty) {
            return Err(TicketError::BadClaims(
                "at least one non-empty role is needed",
            ));
        }
        let json = serde_json::to_vec(claims)
            .map_err(|_| TicketError::BadClaims("claims do not serialize"))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = mac(&self.secret, &payload).finalize().into_bytes();
        Ok(format!("{payload}.{}", hex::encode(tag)))
    }

    /// Checks `ticket` now; `authid`, when given, must be the ticket's.
    pub fn verify(&self, ticket: &str, authid: Option<&str>) -> Result<TicketClaims, TicketError> {
        self.verify_at(ticket, authid, unix_now())
    }

    /// Checks `ticket` as if the time were `now` (unix seconds): MAC (constant time), then shape,
    /// expiry and authid.
    pub fn verify_at(
        &self,
        ticket: &str,
        authid: Option<&str>,
        now: u64,
    ) -> Result<TicketClaims, TicketError> {
        if ticket.len() > MAX_TICKET_BYTES {
            return Err(TicketError::Malformed("too long"));
        }
        let (payload, tag) = ticket
            .split_once('.')
            .ok_or(TicketError::Malformed("expected <payload>.<mac>"))?;
        let tag = hex::decode(tag).map_err(|_| TicketError::Malformed("the MAC is not hex"))?;
        if tag.len() != 32 {
            return Err(TicketError::Malformed("the MAC is not 64 hex digits"));
        }
        mac(&self.secret, payload)
            .verify_slice(&tag)
            .map_err(|_| TicketError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TicketError::Malformed("the payload is not base64url"))?;
        let claims: TicketClaims = serde_json::from_slice(&json)
            .map_err(|_| TicketError::Malformed("the payload is not the claims JSON"))?;
        if now >= claims.exp {
            return Err(TicketError::Expired);
        }
        if authid.is_some_and(|a| a != claims.authid) {
            return Err(TicketError::WrongAuthid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims(exp: u64) -> TicketClaims {
        TicketClaims {
            authid: "alice".into(),
            roles: vec!["member".into()],
            exp,
        }
    }

    #[test]
    fn a_ticket_round_trips_and_holds_no_secret() {
        let key = TicketKey::new("s3cret-value");
        let ticket = key.mint("alice", ["member", "viewer"], Duration::from_secs(60));
        let ticket = ticket.expect("minted");
        assert!(!ticket.contains("s3cret"));
        let got = key.verify(&ticket, Some("alice")).expect("valid");
        assert_eq!(got.roles, vec!["member".to_string(), "viewer".to_string()]);
        assert_eq!(key.verify(&ticket, None).expect("valid").authid, "alice");
    }

    #[test]
    fn each_refusal_says_why() {
        let key = TicketKey::new("k");
        let ticket = key.mint_claims(&claims(NOW + 10)).expect("minted");
        assert_eq!(
            key.verify_at(&ticket, Some("alice"), NOW).map(|c| c.exp),
            Ok(NOW + 10)
        );
        let check = |t: &str, a: Option<&str>, now| key.verify_at(t, a, now).unwrap_err();
        assert_eq!(
            check(&ticket, Some("alice"), NOW + 10),
            TicketError::Expired
        );
        assert_eq!(check(&ticket, Some("bob"), NOW), TicketError::WrongAuthid);
        let forged = TicketKey::new("other")
            .mint_claims(&claims(NOW + 10))
            .expect("minted");
        assert_eq!(check(&forged, None, NOW), TicketError::Invalid);
        // Changing the payload (e.g. a later expiry) breaks the MAC.
        let (_, tag) = ticket.split_once('.').expect("dot");
        let longer =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(NOW + 99_999)).expect("json"));
        assert_eq!(
            check(&format!("{longer}.{tag}"), None, NOW),
            TicketError::Invalid
        );
        for bad in [
            "",
            "nodot",
            "abc.zz",
            "abc.00",
            &"x".repeat(MAX_TICKET_BYTES + 1),
        ] {
            assert!(
                matches!(check(bad, None, NOW), TicketError::Malformed(_)),
                "{bad:.20}"
            );
        }
    }

    #[test]
    fn bad_claims_are_not_minted() {
        let key = TicketKey::new("k");
        let none: [&str; 0] = [];
        assert!(key.mint("", ["r"], Duration::from_secs(1)).is_err());
        assert!(key.mint("a", none, Duration::from_secs(1)).is_err());
        assert!(key.mint("a", ["r"], Duration::ZERO).is_err());
    }
}

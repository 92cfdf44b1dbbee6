//! WAMP-CRA (challenge-response) for the static users of `[[realms.users]]`, as Autobahn implements it:
//! CHALLENGE.Extra.challenge is a JSON string (authid, authrole, authmethod, authprovider, nonce,
//! timestamp, session), and the client answers `base64(HMAC-SHA256(key, challenge))` where the key is the
//! secret, or for salted users the ASCII of `base64(PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen))`
//! (Autobahn's `derive_key`). Signatures are compared in constant time.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_config::UserConfig;

use super::{failed, Identity};
use crate::wamp::Refusal;
use crate::wamp::{Dict, Id};

type HmacSha256 = hmac::Hmac<Sha256>;

/// PBKDF2 iterations when a salted user names none (Autobahn's and Crossbar's default).
pub const DEFAULT_ITERATIONS: u32 = 1000;
/// Derived key length in bytes when a salted user names none (Autobahn's and Crossbar's default).
pub const DEFAULT_KEYLEN: u32 = 32;
/// Longest derived key accepted from the configuration, in bytes.
const MAX_KEYLEN: u32 = 1024;

/// The salt parameters sent in CHALLENGE.Extra so the client can derive the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Salt {
    salt: String,
    iterations: u32,
    keylen: u32,
}

/// A static user with its HMAC key prepared.
#[derive(Clone)]
pub struct User {
    role: String,
    key: Vec<u8>,
    salt: Option<Salt>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("role", &self.role)
            .field("salted", &self.salt.is_some())
            .finish_non_exhaustive()
    }
}

impl User {
    /// Prepares a configured user: the secret itself, or the derived key when salted.
    pub fn from_config(config: &UserConfig) -> Self {
        let salt = config.salt.as_ref().map(|salt| Salt {
            salt: salt.clone(),
            iterations: config.iterations.unwrap_or(DEFAULT_ITERATIONS).max(1),
            keylen: config.keylen.unwrap_or(DEFAULT_KEYLEN).clamp(1, MAX_KEYLEN),
        });
        let key = match &salt {
            Some(s) => derive_key(&config.secret, &s.salt, s.iterations, s.keylen).into_bytes(),
            None => config.secret.clone().into_bytes(),
        };
        User {
            role: config.role.clone(),
            key,
            salt,
        }
    }
}

/// Autobahn's `derive_key`: base64 of PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen bytes).
pub fn derive_key(secret: &str, salt: &str, iterations: u32, keylen: u32) -> String {
    let mut key = vec![0u8; keylen as usize];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt.as_bytes(), iterations, &mut key);
    STANDARD.encode(key)
}

fn mac(key: &[u8], challenge: &str) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(challenge.as_bytes());
    mac
}

/// Autobahn's `compute_wcs`: base64(HMAC-SHA256(key, challenge)).
pub fn sign(key: &[u8], challenge: &str) -> String {
    STANDARD.encode(mac(key, challenge).finalize().into_bytes())
}

/// Does `signature` (base64) sign `challenge` with `key`? Constant-time comparison of the MAC.
pub fn verify(key: &[u8], challenge: &str, signature: &str) -> bool {
    STANDARD
        .decode(signature.trim())
        .is_ok_and(|tag| mac(key, challenge).verify_slice(&tag).is_ok())
}

/// A WAMP-CRA challenge sent, waiting for the signature.
pub struct Pending {
    authid: String,
    role: Option<String>,
    key: Vec<u8>,
    challenge: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("authid", &self.authid)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Checks AUTHENTICATE.Signature against the challenge.
    pub fn authenticate(self, signature: &str) -> Result<Identity, Refusal> {
        let valid = verify(&self.key, &self.challenge, signature);
        match self.role {
            Some(role) if valid => Ok(Identity {
                authid: self.authid,
                roles: vec![role],
                authmethod: "wampcra",
            }),
            // Unknown users and wrong signatures get the same answer: no user enumeration.
            _ => Err(failed(
                "WAMP-CRA signature invalid (unknown authid or wrong secret)",
            )),
        }
    }
}

/// CHALLENGE.Extra for `authid` and the pending state that checks the answer. An unknown authid gets a
/// challenge too (with a random key no answer can match), so the reply does not reveal which users exist.
pub fn challenge(users: &HashMap<String, User>, authid: &str, session: Id) -> (Dict, Pending) {
    let user = users.get(authid);
    let role = user.map(|u| u.role.clone());
    let nonce = hex::encode(rand::rng().random::<[u8; 16]>());
    let challenge = json!({
        "authid": authid,
        "authrole": role.as_deref().unwrap_or("none"),
        "authmethod": "wampcra",
        "authprovider": "static",
        "nonce": nonce,
        "timestamp": iso_timestamp(SystemTime::now()),
        "session": session,
    })
    .to_string();
    let mut extra = Dict::new();
    extra.insert("challenge".into(), Value::from(challenge.clone()));
    if let Some(salt) = user.and_then(|u| u.salt.as_ref()) {
        extra.insert("salt".into(), Value::from(salt.salt.clone()));
        extra.insert("iterations".into(), Value::from(salt.iterations));
        extra.insert("keylen".into(), Value::from(salt.keylen));
    }
    let key = match user {
        Some(user) => user.key.clone(),
        None => rand::rng().random::<[u8; 32]>().to_vec(),
    };
    let pending = Pending {
        authid: authid.to_string(),
        role,
        key,
        challenge,
    };
    (extra, pending)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), the timestamp format of Crossbar's challenges.
fn iso_timestamp(time: SystemTime) -> String {
    // humantime panics on a time before the epoch; a clock that far back shows the epoch.
    humantime::format_rfc3339_millis(time.max(UNIX_EPOCH)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn derive_key_matches_the_design_vector() {
        assert_eq!(
            derive_key("s33kr1t", "salt123", 100, 32),
            "zFXAAAqW5nlonWfP6JLMq4KGLRYZAd8OSXWknEbckCQ="
        );
    }

    #[test]
    fn signatures_verify_only_with_the_right_key() {
        let signature = sign(b"secret", "challenge");
        assert!(verify(b"secret", "challenge", &signature));
        assert!(!verify(b"secret", "challenge2", &signature));
        assert!(!verify(b"other", "challenge", &signature));
        assert!(!verify(b"secret", "challenge", "not base64!"));
        assert!(!verify(b"secret", "challenge", ""));
    }

    #[test]
    fn timestamps_are_iso_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_111_725_123);
        assert_eq!(iso_timestamp(t), "2025-11-25T23:02:05.123Z");
        assert_eq!(iso_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    fn user(salt: Option<&str>) -> UserConfig {
        UserConfig {
            authid: "backend".into(),
            secret: "s33kr1t".into(),
            role: "backend".into(),
            salt: salt.map(str::to_string),
            iterations: Some(100),
            keylen: Some(32),
        }
    }

    #[test]
    fn challenges_carry_salt_parameters_and_check_answers() {
        for salted in [false, true] {
            let users = HashMap::from([(
                "backend".to_string(),
                User::from_config(&user(salted.then_some("salt123"))),
            )]);
            let (extra, pending) = challenge(&users, "backend", 7);
            let text = extra["challenge"]
                .as_str()
                .expect("challenge string")
                .to_string();
            let fields: Value = serde_json::from_str(&text).expect("challenge is JSON");
            assert_eq!(fields["authid"], "backend");
            assert_eq!(fields["session"], 7);
            assert_eq!(extra.contains_key("salt"), salted);
            let key = if salted {
                assert_eq!(extra["iterations"], 100);
                derive_key("s33kr1t", "salt123", 100, 32)
            } else {
                "s33kr1t".to_string()
            };
            let identity = pending.authenticate(&sign(key.as_bytes(), &text));
            assert_eq!(identity.expect("authenticated").roles, vec!["backend"]);
            let (_, pending) = challenge(&users, "backend", 7);
            assert!(pending.authenticate(&sign(key.as_bytes(), &text)).is_err());
        }
        let (extra, pending) = challenge(&HashMap::new(), "nobody", 1);
        let text = extra["challenge"].as_str().expect("challenge").to_string();
        let refusal = pending.authenticate(&sign(b"", &text)).unwrap_err();
        assert_eq!(refusal.uri, super::super::AUTHENTICATION_FAILED);
    }
}

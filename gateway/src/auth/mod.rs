//! Authentication at HELLO (DESIGN.md section 7): anonymous (only where the realm names an anonymous
//! role), WAMP ticket (tickets minted by the web app with the shared secret) and WAMP-CRA (static users of
//! `[[realms.users]]`, salted or not).
//!
//! The session hands HELLO.Details to [`hello`] and gets back either an [`Identity`] to WELCOME, a
//! CHALLENGE to send together with the [`Pending`] state that checks the client's AUTHENTICATE, or a
//! refusal to ABORT with. Refusals never carry a secret, a key or a MAC.

pub mod ticket;
pub mod wampcra;

use std::collections::{HashMap, HashSet};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use switchboard_config::RealmConfig;
use switchboard_wire::TicketKey;

use crate::wamp::Refusal;
use crate::wamp::{Dict, Id};

/// ABORT reason of a failed ticket or WAMP-CRA authentication.
pub const AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
/// ABORT reason when the realm admits no session of this kind (e.g. anonymous where it is not allowed).
pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
/// ABORT reason when none of the client's authmethods is available.
pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
use crate::wamp::refusal::PROTOCOL_VIOLATION;

/// Who an authenticated session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The session's authid.
    pub authid: String,
    /// Its roles, all defined in the realm; the first is the WAMP authrole. Never empty.
    pub roles: Vec<String>,
    /// `anonymous`, `ticket` or `wampcra`.
    pub authmethod: &'static str,
}

impl Identity {
    /// The WAMP authrole: the first role.
    pub fn authrole(&self) -> &str {
        self.roles.first().map_or("", String::as_str)
    }
}

/// A realm's authentication settings, prepared once at start (salted keys are derived here, not per
/// login).
#[derive(Debug, Default)]
pub struct RealmAuth {
    anonymous_role: Option<String>,
    roles: HashSet<String>,
    users: HashMap<String, wampcra::User>,
}

impl RealmAuth {
    /// Prepares a realm's anonymous role, role names and WAMP-CRA users.
    pub fn from_config(config: &RealmConfig) -> Self {
        RealmAuth {
            anonymous_role: config.anonymous_role.clone(),
            roles: config.roles.iter().map(|r| r.name.clone()).collect(),
            users: config
                .users
                .iter()
                .map(|u| (u.authid.clone(), wampcra::User::from_config(u)))
                .collect(),
        }
    }
}

/// What to answer a HELLO with.
#[derive(Debug)]
pub enum HelloOutcome {
    /// Join right away (anonymous).
    Welcome(Identity),
    /// Send CHALLENGE [4, authmethod, extra] and wait for AUTHENTICATE.
    Challenge {
        /// The method being used (`ticket` or `wampcra`).
        authmethod: &'static str,
        /// CHALLENGE.Extra.
        extra: Dict,
        /// What checks the AUTHENTICATE.
        pending: Pending,
    },
    /// ABORT.
    Abort(Refusal),
}

/// A challenge sent, waiting for the client's AUTHENTICATE.
#[derive(Debug)]
pub enum Pending {
    /// Ticket authentication; `authid` is HELLO's (the ticket's own when HELLO named none).
    Ticket(ticket::Pending),
    /// WAMP-CRA for one user (or for an unknown authid, which can never succeed).
    WampCra(wampcra::Pending),
}

impl Pending {
    /// Checks AUTHENTICATE's signature; the identity to WELCOME, or the refusal to ABORT with.
    pub fn authenticate(
        self,
        realm: &RealmAuth,
        tickets: Option<&TicketKey>,
        signature: &str,
    ) -> Result<Identity, Refusal> {
        match self {
            Pending::Ticket(pending) => pending.authenticate(realm, tickets, signature),
            Pending::WampCra(pending) => pending.authenticate(signature),
        }
    }
}

/// Decides how a HELLO to `realm` authenticates. `tickets` is the gateway's ticket key (None: no
/// secret, no ticket authentication); `session` is the id the session will get, for the WAMP-CRA
/// challenge.
pub fn hello(
    realm: &RealmAuth,
    tickets: Option<&TicketKey>,
    details: &Dict,
    session: Id,
) -> HelloOutcome {
    let authmethods = match details.get("authmethods") {
        None => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ),
        Some(other) => {
            return HelloOutcome::Abort(Refusal::new(
                PROTOCOL_VIOLATION,
                format!("HELLO.Details.authmethods must be a list of strings, got {other}"),
            ))
        }
    };
    let authid = match details.get("authid") {
        None | Some(Value::Null) => None,
        Some(Value::String(authid)) if !authid.is_empty() => Some(authid.clone()),
        Some(other) => {
            return HelloOutcome::Abort(Refusal::new(
                PROTOCOL_VIOLATION,
                format!("HELLO.Details.authid must be a non-empty string, got {other}"),
            ))
        }
    };
    let methods = authmethods.unwrap_or_else(|| vec!["anonymous".to_string()]);
    for method in &methods {
        match method.as_str() {
            "anonymous" => {
                if let Some(role) = &realm.anonymous_role {
                    return HelloOutcome::Welcome(anonymous(role));
                }
            }
            "ticket" if tickets.is_some() => {
                return HelloOutcome::Challenge {
                    authmethod: "ticket",
                    extra: Dict::new(),
                    pending: Pending::Ticket(ticket::Pending::new(authid)),
                };
            }
            "wampcra" => {
                if let Some(authid) = &authid {
                    let (extra, pending) = wampcra::challenge(&realm.users, authid, session);
                    return HelloOutcome::Challenge {
                        authmethod: "wampcra",
                        extra,
                        pending: Pending::WampCra(pending),
                    };
                }
            }
            _ => {}
        }
    }
    if methods.iter().any(|m| m == "anonymous") {
        return HelloOutcome::Abort(Refusal::new(
            NOT_AUTHORIZED,
            "this realm does not admit anonymous sessions",
        ));
    }
    HelloOutcome::Abort(Refusal::new(
        NO_AUTH_METHOD,
        format!(
            "none of the offered authmethods ({}) is available (wampcra needs an authid)",
            methods.join(", ")
        ),
    ))
}

fn anonymous(role: &str) -> Identity {
    Identity {
        authid: format!(
            "anonymous-{}",
            Alphanumeric.sample_string(&mut rand::rng(), 12)
        ),
        roles: vec![role.to_string()],
        authmethod: "anonymous",
    }
}

/// An authentication failure: ABORT `wamp.error.authentication_failed` with `reason` (never a secret).
fn failed(reason: impl Into<String>) -> Refusal {
    Refusal::new(AUTHENTICATION_FAILED, reason)
}

#[cfg(test)]
mod tests;

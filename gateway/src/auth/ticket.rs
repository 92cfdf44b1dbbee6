//! WAMP ticket authentication: CHALLENGE [4, "ticket", {}], the client answers AUTHENTICATE with a
//! ticket minted by the web app (`switchboard_wire::TicketKey`); the gateway checks signature, expiry
//! and authid and grants the ticket's roles that the realm defines.

use switchboard_wire::{TicketError, TicketKey};

use super::{failed, Identity, RealmAuth, NOT_AUTHORIZED};
use crate::wamp::Refusal;

/// A ticket challenge sent; waiting for the ticket.
#[derive(Debug)]
pub struct Pending {
    authid: Option<String>,
}

impl Pending {
    /// Waits for a ticket for `authid` (HELLO.Details.authid; None accepts the ticket's own).
    pub fn new(authid: Option<String>) -> Self {
        Pending { authid }
    }

    /// Checks the ticket sent as AUTHENTICATE.Signature.
    pub fn authenticate(
        self,
        realm: &RealmAuth,
        tickets: Option<&TicketKey>,
        ticket: &str,
    ) -> Result<Identity, Refusal> {
        let key = tickets.ok_or_else(|| failed("ticket authentication is not configured"))?;
        let claims = key
            .verify(ticket, self.authid.as_deref())
            .map_err(|error: TicketError| failed(error.to_string()))?;
        let roles: Vec<String> = claims
            .roles
            .into_iter()
            .filter(|role| realm.roles.contains(role))
            .collect();
        if roles.is_empty() {
            return Err(Refusal::new(
                NOT_AUTHORIZED,
                "none of the ticket's roles is defined in this realm",
            ));
        }
        Ok(Identity {
            authid: claims.authid,
            roles,
            authmethod: "ticket",
        })
    }
}

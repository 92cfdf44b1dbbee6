//! The management calls a web app makes: how many sessions, is this user online and where, close a
//! user's sessions, who would receive a topic. They live in the router, which owns that state; the
//! JSON-RPC ingestion module only maps parameters to these calls and their answers to JSON.

use std::sync::Arc;

use super::{Realm, Router};
use crate::wamp::Id;

/// GOODBYE reason of a session closed by somebody else (JSON-RPC `kick`, `wamp.session.kill*`) when no
/// reason is named: the WAMP meta API's reason for killed sessions.
pub const KILLED_REASON: &str = "wamp.close.killed";

/// A management call named a realm the gateway does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no realm named {0:?}")]
pub struct UnknownRealm(pub String);

/// One joined session, as management calls describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub session: Id,
    /// Its authenticated identity.
    pub authid: String,
    /// Its role (the first of its roles).
    pub authrole: String,
    /// The realm it joined.
    pub realm: String,
}

impl Router {
    /// The realm named `realm`, or every realm when `None`.
    fn selected(&self, realm: Option<&str>) -> Result<Vec<&Arc<Realm>>, UnknownRealm> {
        match realm {
            Some(name) => self
                .realm(name)
                .map(|realm| vec![realm])
                .ok_or_else(|| UnknownRealm(name.to_string())),
            None => Ok(self.realms().collect()),
        }
    }

    /// Joined sessions in `realm` (or in every realm).
    pub fn count_sessions(&self, realm: Option<&str>) -> Result<usize, UnknownRealm> {
        Ok(self
            .selected(realm)?
            .iter()
            .map(|realm| realm.session_count())
            .sum())
    }

    /// The sessions of `authid` in `realm` (or in every realm): is this user online, and where.
    pub fn sessions_of(
        &self,
        authid: &str,
        realm: Option<&str>,
    ) -> Result<Vec<SessionInfo>, UnknownRealm> {
        let mut list = Vec::new();
        for realm in self.selected(realm)? {
            list.extend(
                realm
                    .peers_by_authid(authid)
                    .iter()
                    .map(|peer| SessionInfo {
                        session: peer.id,
                        authid: peer.authid.clone(),
                        authrole: peer.authrole.clone(),
                        realm: realm.name.clone(),
                    }),
            );
        }
        Ok(list)
    }

    /// Closes every session of `authid` in `realm` (or every realm) with GOODBYE `reason` and `message`
    /// (after a logout or a ban); returns how many.
    pub fn kick(
        &self,
        authid: &str,
        reason: &str,
        message: &str,
        realm: Option<&str>,
    ) -> Result<usize, UnknownRealm> {
        Ok(self
            .selected(realm)?
            .iter()
            .map(|realm| realm.kick(authid, reason, message))
            .sum())
    }

    /// The sessions an event on `topic` would reach in `realm` (or every realm), before any per-event
    /// audience options and under the same permission rule as delivery.
    pub fn subscribers_of(
        &self,
        topic: &str,
        realm: Option<&str>,
    ) -> Result<Vec<Id>, UnknownRealm> {
        let mut sessions = Vec::new();
        for realm in self.selected(realm)? {
            sessions.extend(realm.broker().subscriber_sessions(topic));
        }
        Ok(sessions)
    }
}

impl Router {
    /// The newest stored publication of `topic` in `realm` (or the default realm): the position a page
    /// rendered now recovers from with `get_events`. `None` when the topic has nothing in history.
    pub fn last_publication(
        &self,
        topic: &str,
        realm: Option<&str>,
    ) -> Result<Option<Id>, UnknownRealm> {
        let realm = match realm {
            Some(name) => self
                .realm(name)
                .ok_or_else(|| UnknownRealm(name.to_string()))?,
            None => match self.default_realm() {
                Some(realm) => realm,
                None => return Ok(None),
            },
        };
        Ok(realm
            .stored()
            .last_publication(topic, std::time::Instant::now()))
    }
}

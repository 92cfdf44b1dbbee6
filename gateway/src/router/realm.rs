//! A realm: a routing namespace with its own sessions, broker, dealer and roles. Locks here are plain
//! (non-async) locks held only for in-memory work, never across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use switchboard_config::RealmConfig;

use super::authorize::Grants;
use super::broker::Broker;
use super::dealer::Dealer;
use super::outbox::Closing;
use super::peer::Peer;
use crate::auth::RealmAuth;
use crate::wamp::ids::random_id;
use crate::wamp::Id;

/// One realm's routing state.
#[derive(Debug)]
pub struct Realm {
    /// The realm URI.
    pub name: String,
    /// Role of sessions that join without authenticating; `None` forbids anonymous sessions.
    pub anonymous_role: Option<String>,
    /// How sessions authenticate here (anonymous role, role names, WAMP-CRA users).
    pub auth: RealmAuth,
    roles: HashMap<String, Grants>,
    sessions: RwLock<HashMap<Id, Arc<Peer>>>,
    broker: RwLock<Broker>,
    dealer: Mutex<Dealer>,
}

/// Locks recover from poisoning: a panic elsewhere must not take the whole realm down with it.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Realm {
    /// Builds a realm from its configuration.
    pub fn from_config(config: &RealmConfig) -> Self {
        Realm {
            name: config.name.clone(),
            anonymous_role: config.anonymous_role.clone(),
            auth: RealmAuth::from_config(config),
            roles: config
                .roles
                .iter()
                .map(|r| (r.name.clone(), Grants::for_role(r)))
                .collect(),
            sessions: RwLock::default(),
            broker: RwLock::default(),
            dealer: Mutex::default(),
        }
    }

    /// The permissions of `role`; an unknown role may do nothing.
    pub fn grants(&self, role: &str) -> Grants {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    /// The combined permissions of `roles`: an action is allowed when any of them allows it.
    pub fn grants_of(&self, roles: &[String]) -> Grants {
        Grants::any_of(roles.iter().map(|role| self.grants(role)))
    }

    /// Adds a session with id `preferred` (e.g. the one announced in a WAMP-CRA challenge) unless it
    /// is taken, else a random unused one; `make` builds the peer for it.
    pub fn join(&self, preferred: Option<Id>, make: impl FnOnce(Id) -> Peer) -> Arc<Peer> {
        let mut sessions = write(&self.sessions);
        let mut id = preferred.unwrap_or_else(random_id);
        while sessions.contains_key(&id) {
            id = random_id();
        }
        let peer = Arc::new(make(id));
        sessions.insert(id, Arc::clone(&peer));
        peer
    }

    /// Removes a session with its subscriptions, registrations and calls in flight.
    pub fn leave(
        &self,
        session: Id,
        subscriptions: impl IntoIterator<Item = Id>,
        registrations: impl IntoIterator<Item = Id>,
    ) {
        write(&self.sessions).remove(&session);
        {
            let mut broker = write(&self.broker);
            for id in subscriptions {
                broker.unsubscribe(session, id);
            }
        }
        self.dealer().remove_session(session, registrations);
    }

    /// Number of joined sessions.
    pub fn session_count(&self) -> usize {
        read(&self.sessions).len()
    }

    /// Every joined session (for shutdown and management).
    pub fn peers(&self) -> Vec<Arc<Peer>> {
        read(&self.sessions).values().cloned().collect()
    }

    /// Joined sessions authenticated as `authid` (management: "is alice online, and where").
    pub fn peers_by_authid(&self, authid: &str) -> Vec<Arc<Peer>> {
        read(&self.sessions)
            .values()
            .filter(|p| p.authid == authid)
            .cloned()
            .collect()
    }

    /// Closes every session of `authid` with GOODBYE `reason` (management "kick"); returns how many. The
    /// transport sends the GOODBYE and the session leaves the realm as it closes.
    pub fn kick(&self, authid: &str, reason: &str, message: &str) -> usize {
        self.peers_by_authid(authid)
            .iter()
            .filter(|peer| {
                peer.outbox.close(Closing::Goodbye {
                    reason: reason.to_string(),
                    message: message.to_string(),
                })
            })
            .count()
    }

    /// Shared access to the broker, for publishing.
    pub fn broker(&self) -> RwLockReadGuard<'_, Broker> {
        read(&self.broker)
    }

    /// Exclusive access to the broker, for subscription changes.
    pub fn broker_mut(&self) -> RwLockWriteGuard<'_, Broker> {
        write(&self.broker)
    }

    /// Exclusive access to the dealer.
    pub fn dealer(&self) -> MutexGuard<'_, Dealer> {
        self.dealer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

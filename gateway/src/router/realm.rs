//! A realm: a routing namespace with its own sessions, broker, dealer and roles. Locks here are plain
//! (non-async) locks held only for in-memory work, never across an await.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use switchboard_config::RealmConfig;

use super::authorize::Grants;
use super::broker::Broker;
use super::dealer::Dealer;
use super::history::{Rules, Store, Views, MODEL_PREFIX};
use super::outbox::Closing;
use super::peer::Peer;
use super::presence::Presence;
use super::{Refusal, LIMIT_EXCEEDED};
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
    /// Grants of role combinations (tickets may carry several roles), built once and shared, so that
    /// sessions with the same roles share one decision per event on delivery.
    combined: Mutex<HashMap<Vec<String>, Grants>>,
    sessions: RwLock<Sessions>,
    broker: RwLock<Broker>,
    dealer: Mutex<Dealer>,
    /// Which topics keep history (also inside `stored`: read here without taking its lock).
    history_rules: Rules,
    /// Topics of the model views (`models.<name>`), read without taking the lock of `stored`.
    view_topics: HashSet<String>,
    /// History and retained events.
    stored: Mutex<Store>,
    /// Who is subscribed to which topic, per authid (see `presence.rs`).
    presence: Mutex<Presence>,
    /// This realm, for the timers it starts (conflation windows) to find it again while it lives.
    me: Weak<Realm>,
}

/// The joined sessions, and how many each authid has (for `max_sessions_per_authid`).
#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<Id, Arc<Peer>>,
    per_authid: HashMap<String, usize>,
}

/// Most role combinations remembered per realm; past it, combined grants are built per session.
const MAX_COMBINED_GRANTS: usize = 1024;

/// Locks recover from poisoning: a panic elsewhere must not take the whole realm down with it.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Realm {
    /// Builds a realm from its configuration; `history_max_bytes` bounds its stored events.
    pub fn from_config(config: &RealmConfig, history_max_bytes: usize) -> Arc<Self> {
        Arc::new_cyclic(|me| Self::build(config, history_max_bytes, me.clone()))
    }

    fn build(config: &RealmConfig, history_max_bytes: usize, me: Weak<Realm>) -> Self {
        let history_rules = Rules::from_config(&config.history);
        Realm {
            name: config.name.clone(),
            anonymous_role: config.anonymous_role.clone(),
            auth: RealmAuth::from_config(config),
            roles: config
                .roles
                .iter()
                .map(|r| (r.name.clone(), Grants::for_role(r)))
                .collect(),
            combined: Mutex::default(),
            sessions: RwLock::default(),
            broker: RwLock::default(),
            dealer: Mutex::default(),
            stored: Mutex::new(Store::new(
                history_rules.clone(),
                Views::from_config(&config.models),
                history_max_bytes,
            )),
            presence: Mutex::default(),
            history_rules,
            me,
            view_topics: config
                .models
                .iter()
                .map(|model| format!("{MODEL_PREFIX}{}", model.name))
                .collect(),
        }
    }

    /// The permissions of `role`; an unknown role may do nothing.
    pub fn grants(&self, role: &str) -> Grants {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    /// The combined permissions of `roles`: an action is allowed when any of them allows it. The same
    /// roles always give the same (shared) grants.
    pub fn grants_of(&self, roles: &[String]) -> Grants {
        if let [role] = roles {
            return self.grants(role);
        }
        let mut combined = self.combined.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(grants) = combined.get(roles) {
            return grants.clone();
        }
        let grants = Grants::any_of(roles.iter().map(|role| self.grants(role)));
        if combined.len() < MAX_COMBINED_GRANTS {
            combined.insert(roles.to_vec(), grants.clone());
        }
        grants
    }

    /// Adds a session with id `preferred` (e.g. the one announced in a WAMP-CRA challenge) unless it
    /// is taken, else a random unused one; `make` builds the peer for it. Refused when `authid` already
    /// has `max_per_authid` sessions here.
    pub fn join(
        &self,
        preferred: Option<Id>,
        authid: &str,
        max_per_authid: usize,
        make: impl FnOnce(Id) -> Peer,
    ) -> Result<Arc<Peer>, Refusal> {
        let mut sessions = write(&self.sessions);
        let count = sessions.per_authid.get(authid).copied().unwrap_or(0);
        if count >= max_per_authid {
            return Err(Refusal::new(
                LIMIT_EXCEEDED,
                format!(
                    "{authid} already has {count} sessions in realm {}, the most allowed \
                     (gateway.max_sessions_per_authid)",
                    self.name
                ),
            ));
        }
        let mut id = preferred.unwrap_or_else(random_id);
        while sessions.by_id.contains_key(&id) {
            id = random_id();
        }
        let peer = Arc::new(make(id));
        sessions.by_id.insert(id, Arc::clone(&peer));
        *sessions.per_authid.entry(peer.authid.clone()).or_default() += 1;
        metrics::gauge!("switchboard_sessions").increment(1.0);
        Ok(peer)
    }

    /// Removes a session with its subscriptions, registrations and calls in flight.
    pub fn leave(
        &self,
        session: Id,
        subscriptions: impl IntoIterator<Item = Id>,
        registrations: impl IntoIterator<Item = Id>,
    ) {
        let mut left = None;
        {
            let mut sessions = write(&self.sessions);
            if let Some(peer) = sessions.by_id.remove(&session) {
                metrics::gauge!("switchboard_sessions").decrement(1.0);
                if let Some(count) = sessions.per_authid.get_mut(&peer.authid) {
                    *count -= 1;
                    if *count == 0 {
                        sessions.per_authid.remove(&peer.authid);
                    }
                }
                left = Some(peer);
            }
        }
        let presence = self.presence_lock();
        let mut removed = Vec::new();
        let mut exact_topics = Vec::new();
        {
            let mut broker = write(&self.broker);
            for id in subscriptions {
                let topic = broker
                    .exact_topic(id)
                    .filter(|topic| super::presence::tracked(topic))
                    .map(str::to_string);
                if let Some(gone) = broker.unsubscribe_noting(session, id) {
                    removed.push((id, gone));
                    exact_topics.extend(topic);
                }
            }
        }
        self.dealer().remove_session(session, registrations);
        match &left {
            Some(peer) => {
                self.presence_unsubscribed(presence, &peer.authid, &exact_topics, Some(session))
            }
            None => drop(presence),
        }
        if let Some(peer) = left {
            self.meta_left(&peer, &removed);
        }
    }

    /// Number of joined sessions.
    pub fn session_count(&self) -> usize {
        read(&self.sessions).by_id.len()
    }

    /// Every joined session (for shutdown and management).
    pub fn peers(&self) -> Vec<Arc<Peer>> {
        read(&self.sessions).by_id.values().cloned().collect()
    }

    /// The joined session `id` (session meta API).
    pub fn peer(&self, id: Id) -> Option<Arc<Peer>> {
        read(&self.sessions).by_id.get(&id).cloned()
    }

    /// Joined sessions authenticated as `authid` (management: "is alice online, and where").
    pub fn peers_by_authid(&self, authid: &str) -> Vec<Arc<Peer>> {
        read(&self.sessions)
            .by_id
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

    /// A weak handle on this realm, for tasks that must not keep it alive.
    pub(crate) fn me(&self) -> Weak<Realm> {
        self.me.clone()
    }

    /// Does an event on `topic` go into the stored events (history, retention or a model view)?
    pub(crate) fn stores(&self, topic: &str, retain: bool) -> bool {
        retain || self.history_rules.keep(topic).is_some() || self.view_topics.contains(topic)
    }

    /// Exclusive access to the stored events (history and retained).
    pub(crate) fn stored(&self) -> MutexGuard<'_, Store> {
        self.stored.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access to the presence bookkeeping.
    pub(super) fn presence(&self) -> MutexGuard<'_, Presence> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access to the dealer.
    pub fn dealer(&self) -> MutexGuard<'_, Dealer> {
        self.dealer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

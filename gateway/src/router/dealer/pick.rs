//! Which callee serves a call: the registration's policy applied to every callee of the procedure, this
//! node's and, in a cluster, the other nodes'.
//!
//! Across nodes the callees are ordered by when they registered (then node name, then session), so
//! `first` and `last` name the same callee on every node; `roundrobin` takes them in that order, with
//! one turn per calling node; `random` is uniform over all. Should two nodes accept a `single`
//! registration of one procedure at once (before either heard of the other's), every node calls the
//! earlier one.

use std::sync::Arc;

use rand::Rng;

use super::remote::RemoteCallee;
use super::{Dealer, InvokePolicy};
use crate::router::peer::{ClientFeatures, Peer};
use crate::wamp::Id;

/// The callee a call goes to.
pub(super) enum Target {
    /// A session of this node, with the registration id its INVOCATION names.
    Local { peer: Arc<Peer>, registration: Id },
    /// A session of another node.
    Remote(RemoteCallee),
}

impl Target {
    /// What the callee can do (announced by its node, for a remote one).
    pub(super) fn features(&self) -> ClientFeatures {
        match self {
            Target::Local { peer, .. } => peer.features,
            Target::Remote(remote) => remote.features,
        }
    }
}

/// Index of the callee `policy` picks among `count` (> 0), in registration order.
fn index(policy: InvokePolicy, count: usize, turn: &mut usize) -> usize {
    match policy {
        InvokePolicy::Single | InvokePolicy::First => 0,
        InvokePolicy::Last => count - 1,
        InvokePolicy::Random => rand::rng().random_range(0..count),
        InvokePolicy::RoundRobin => {
            *turn = turn.wrapping_add(1);
            *turn % count
        }
    }
}

/// One callee of the procedure, wherever it is.
struct Candidate<'a> {
    since_us: u64,
    node: &'a str,
    session: Id,
    invoke: InvokePolicy,
    slot: Slot,
}

/// Where a candidate stands: an index into this node's registration or into the remote list.
#[derive(Clone, Copy)]
enum Slot {
    Local(usize),
    Remote(usize),
}

impl Dealer {
    /// The callee for a call of `procedure`, or None when nobody serves it.
    pub(super) fn pick(&mut self, procedure: &str) -> Option<Target> {
        let local_id = self.by_procedure.get(procedure).copied();
        // Field by field: the node's name and the remote callees are borrowed side by side.
        let me = self.remote.link.as_ref().map_or("", |link| link.nodes.me());
        let Some(remote) = self.remote.procedures.get_mut(procedure) else {
            // Only this node serves it (always so on a single node).
            let id = local_id?;
            let registration = self.registrations.get_mut(&id)?;
            if registration.callees.is_empty() {
                return None;
            }
            let i = index(
                registration.invoke,
                registration.callees.len(),
                &mut registration.turn,
            );
            let peer = Arc::clone(&registration.callees[i].peer);
            return Some(Target::Local {
                peer,
                registration: id,
            });
        };
        let local = local_id.and_then(|id| self.registrations.get(&id).map(|r| (id, r)));
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        if let Some((_, registration)) = local {
            candidates.extend(
                registration
                    .callees
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Candidate {
                        since_us: c.since_us,
                        node: me,
                        session: c.peer.id,
                        invoke: registration.invoke,
                        slot: Slot::Local(i),
                    }),
            );
        }
        candidates.extend(remote.callees.iter().enumerate().map(|(i, c)| Candidate {
            since_us: c.since_us,
            node: &c.node,
            session: c.session,
            invoke: c.invoke,
            slot: Slot::Remote(i),
        }));
        candidates
            .sort_by(|a, b| (a.since_us, a.node, a.session).cmp(&(b.since_us, b.node, b.session)));
        let policy = candidates.first()?.invoke;
        candidates.retain(|c| c.invoke == policy);
        let chosen = candidates[index(policy, candidates.len(), &mut remote.turn)].slot;
        match chosen {
            Slot::Local(i) => local.map(|(id, registration)| Target::Local {
                peer: Arc::clone(&registration.callees[i].peer),
                registration: id,
            }),
            Slot::Remote(i) => Some(Target::Remote(remote.callees[i].clone())),
        }
    }
}

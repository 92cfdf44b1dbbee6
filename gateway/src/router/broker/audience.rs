//! Who receives one event: the publisher's black and white lists and exclusion ([`Audience`]), and the
//! subscriber's role where its pattern reaches topics the role may not see ([`RoleDecisions`]).

use serde::{Deserialize, Serialize};

use super::super::authorize::Action;
use super::super::peer::Peer;
use crate::wamp::{options, Dict, Id};

/// Per-event memory of role decisions: subscribers holding the same role share one rule walk, and a
/// run of subscribers with the same role (the common case) costs one comparison each.
#[derive(Default)]
pub(super) struct RoleDecisions {
    last: Option<(usize, bool)>,
    decided: Vec<(usize, bool)>,
}

impl RoleDecisions {
    pub(super) fn may_receive(&mut self, key: usize, peer: &Peer, topic: &str) -> bool {
        match self.last {
            Some((last, allowed)) if last == key => return allowed,
            _ => {}
        }
        let allowed = match self.decided.iter().find(|(k, _)| *k == key) {
            Some((_, allowed)) => *allowed,
            None => {
                let allowed = peer.grants.allows(Action::Subscribe, topic);
                self.decided.push((key, allowed));
                allowed
            }
        };
        self.last = Some((key, allowed));
        allowed
    }
}

/// Who may receive an event, from PUBLISH options (black/white listing) and publisher exclusion. It is
/// part of a cluster log record (`cluster/record.rs`): every node decides with the same audience, and
/// session ids are global (random), so a list may name sessions on any node.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Audience {
    /// The publisher's session, excluded when `exclude_me` is true (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_session: Option<Id>,
    /// `exclude`: session ids never to receive it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Id>,
    /// `eligible`: when set, only these session ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible: Option<Vec<Id>>,
    /// `exclude_authid`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_authid: Vec<String>,
    /// `eligible_authid`: when set, only sessions with these authids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_authid: Option<Vec<String>>,
    /// `exclude_authrole`: sessions holding any of these roles (not only as their first) never receive it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_authrole: Vec<String>,
    /// `eligible_authrole`: when set, only sessions holding one of these roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_authrole: Option<Vec<String>>,
}

impl Audience {
    /// Reads the black/white-listing keys of WAMP PUBLISH options (also the ingestion event's options);
    /// `exclude_session` is the publisher when it asked to be excluded.
    pub(crate) fn from_options(publish_options: &Dict, exclude_session: Option<Id>) -> Self {
        Audience {
            exclude_session,
            exclude: options::ids(publish_options, "exclude").unwrap_or_default(),
            eligible: options::ids(publish_options, "eligible"),
            exclude_authid: options::strings(publish_options, "exclude_authid").unwrap_or_default(),
            eligible_authid: options::strings(publish_options, "eligible_authid"),
            exclude_authrole: options::strings(publish_options, "exclude_authrole")
                .unwrap_or_default(),
            eligible_authrole: options::strings(publish_options, "eligible_authrole"),
        }
    }

    /// Does everybody subscribed receive it (no list, nobody excluded)? Then a log record leaves it out.
    pub(crate) fn is_everyone(&self) -> bool {
        self.exclude_session.is_none() && !self.is_private()
    }

    /// Does the publisher restrict who receives the event (black or white lists)? Such an event is private
    /// and never stored (the WAMP rule for history and retention).
    pub(crate) fn is_private(&self) -> bool {
        !self.exclude.is_empty()
            || self.eligible.is_some()
            || !self.exclude_authid.is_empty()
            || self.eligible_authid.is_some()
            || !self.exclude_authrole.is_empty()
            || self.eligible_authrole.is_some()
    }

    pub(super) fn admits(&self, peer: &Peer) -> bool {
        self.exclude_session != Some(peer.id)
            && !self.exclude.contains(&peer.id)
            && self
                .eligible
                .as_ref()
                .is_none_or(|ids| ids.contains(&peer.id))
            && !self.exclude_authid.contains(&peer.authid)
            && self
                .eligible_authid
                .as_ref()
                .is_none_or(|ids| ids.contains(&peer.authid))
            && !peer.roles.iter().any(|r| self.exclude_authrole.contains(r))
            && self
                .eligible_authrole
                .as_ref()
                .is_none_or(|roles| peer.roles.iter().any(|r| roles.contains(r)))
    }
}

//! Role permissions: which actions a session may take on which URIs. Deny by default; when several rules
//! match a URI, the most specific one decides (an exact rule beats any pattern, a longer pattern beats a
//! shorter one). A session holding several roles may do what any of them allows. Each session keeps its
//! decisions in a small bounded [`DecisionCache`], so a repeated request does not walk the rules again.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_config::{Allow, MatchPolicy, RoleConfig};

/// The four WAMP actions that permissions govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// SUBSCRIBE to a topic or pattern.
    Subscribe,
    /// PUBLISH to a topic.
    Publish,
    /// CALL a procedure.
    Call,
    /// REGISTER a procedure.
    Register,
}

impl Action {
    fn allowed_by(self, allow: &Allow) -> bool {
        match self {
            Action::Subscribe => allow.subscribe,
            Action::Publish => allow.publish,
            Action::Call => allow.call,
            Action::Register => allow.register,
        }
    }

    fn index(self) -> usize {
        match self {
            Action::Subscribe => 0,
            Action::Publish => 1,
            Action::Call => 2,
            Action::Register => 3,
        }
    }

    /// The action's name for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Subscribe => "subscribe to",
            Action::Publish => "publish to",
            Action::Call => "call",
            Action::Register => "register",
        }
    }
}

#[derive(Debug)]
pub(super) struct Rule {
    pub(super) uri: String,
    pub(super) policy: MatchPolicy,
    allow: Allow,
}

impl Rule {
    /// Does this rule allow `action`?
    pub(super) fn allows(&self, action: Action) -> bool {
        action.allowed_by(&self.allow)
    }

    /// Higher is more specific: exact rules first, then by pattern length.
    pub(super) fn specificity(&self) -> (bool, usize) {
        (self.policy == MatchPolicy::Exact, self.uri.len())
    }
}

/// The compiled permissions of one role (or several), shared by every session holding it.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// One rule list per role.
    roles: Arc<[Arc<[Rule]>]>,
}

impl Grants {
    /// Compiles a role's permission list.
    pub fn for_role(role: &RoleConfig) -> Self {
        let rules: Vec<Rule> = role
            .permissions
            .iter()
            .map(|p| Rule {
                uri: p.uri.clone(),
                policy: p.match_policy,
                allow: p.allow,
            })
            .collect();
        Grants {
            roles: Arc::from([Arc::from(rules)]),
        }
    }

    /// The union of several roles' grants: allowed when any role allows.
    pub fn any_of(grants: impl IntoIterator<Item = Grants>) -> Self {
        let roles: Vec<Arc<[Rule]>> = grants
            .into_iter()
            .flat_map(|g| g.roles.iter().cloned().collect::<Vec<_>>())
            .collect();
        Grants {
            roles: roles.into(),
        }
    }

    /// Does the most specific rule matching `uri` (in any role) allow `action`? No matching rule means no.
    pub fn allows(&self, action: Action, uri: &str) -> bool {
        self.roles.iter().any(|rules| {
            rules
                .iter()
                .filter(|rule| rule.policy.matches(&rule.uri, uri))
                .max_by_key(|rule| rule.specificity())
                .is_some_and(|rule| action.allowed_by(&rule.allow))
        })
    }

    /// What these grants say about `action` on every URI that `pattern` (under `policy`) can match: all
    /// of them allowed, none, or some (then each concrete URI must be checked when it occurs). Sound but
    /// conservative: `All` and `None` are only answered when they are certain.
    pub fn coverage(&self, action: Action, pattern: &str, policy: MatchPolicy) -> Coverage {
        if policy == MatchPolicy::Exact {
            return if self.allows(action, pattern) {
                Coverage::All
            } else {
                Coverage::None
            };
        }
        let per_role = self
            .roles
            .iter()
            .map(|rules| super::coverage::of_rules(rules, action, pattern, policy));
        per_role.fold(Coverage::None, Coverage::union)
    }

    /// An identity for this exact set of compiled rules: sessions holding the same role share it, so a
    /// fan-out decides once per role, not once per session.
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.roles) as *const () as usize
    }
}

/// How much of a pattern's URIs a role may act on (see [`Grants::coverage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every URI the pattern can match is allowed: no check is needed when an event arrives.
    All,
    /// Some may be allowed, some not: each event's concrete topic is checked on delivery.
    Some,
    /// None is allowed: the request is refused.
    None,
}

impl Coverage {
    /// The coverage of several roles together (allowed when any role allows).
    pub fn union(self, other: Coverage) -> Coverage {
        match (self, other) {
            (Coverage::All, _) | (_, Coverage::All) => Coverage::All,
            (Coverage::None, Coverage::None) => Coverage::None,
            _ => Coverage::Some,
        }
    }
}

/// URIs a session remembers decisions for at most; past that its decisions are forgotten and taken
/// again (bounded memory whatever URIs a client tries).
pub const DECISION_CACHE_CAPACITY: usize = 128;

/// One session's authorization decisions: URI -> (action -> allowed), computed once from its grants.
/// Session-local, so no lock; empty until used, so idle sessions pay nothing.
#[derive(Debug, Default)]
pub struct DecisionCache {
    decisions: HashMap<Box<str>, [Option<bool>; 4]>,
    walks: u64,
}

impl DecisionCache {
    /// Does `grants` allow `action` on `uri`? Cached after the first time.
    pub fn allows(&mut self, grants: &Grants, action: Action, uri: &str) -> bool {
        if let Some(allowed) = self.decisions.get(uri).and_then(|d| d[action.index()]) {
            return allowed;
        }
        self.walks += 1;
        let allowed = grants.allows(action, uri);
        if !self.decisions.contains_key(uri) && self.decisions.len() >= DECISION_CACHE_CAPACITY {
            self.decisions.clear();
        }
        self.decisions.entry(uri.into()).or_default()[action.index()] = Some(allowed);
        allowed
    }

    /// URIs with decisions remembered now.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// How many times the rules were walked (cache misses).
    pub fn walks(&self) -> u64 {
        self.walks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_config::Permission;

    fn rule(uri: &str, policy: MatchPolicy, subscribe: bool, call: bool) -> Permission {
        Permission {
            uri: uri.into(),
            match_policy: policy,
            allow: Allow {
                subscribe,
                publish: false,
                call,
                register: false,
            },
        }
    }

    #[test]
    fn deny_by_default_and_most_specific_rule_wins() {
        let role = RoleConfig {
            name: "member".into(),
            permissions: vec![
                rule("app.public", MatchPolicy::Prefix, true, false),
                rule("app.public.secret", MatchPolicy::Exact, false, false),
                rule("app.rpc.", MatchPolicy::Prefix, false, true),
            ],
        };
        let grants = Grants::for_role(&role);
        assert!(grants.allows(Action::Subscribe, "app.public.news"));
        assert!(!grants.allows(Action::Subscribe, "app.public.secret"));
        assert!(!grants.allows(Action::Publish, "app.public.news"));
        assert!(grants.allows(Action::Call, "app.rpc.add"));
        assert!(!grants.allows(Action::Subscribe, "app.rpc.add"));
        assert!(!grants.allows(Action::Subscribe, "other.topic"));
        assert!(!Grants::default().allows(Action::Call, "anything"));
    }

    fn member_and_publisher() -> (Grants, Grants) {
        let member = Grants::for_role(&RoleConfig {
            name: "member".into(),
            permissions: vec![rule("app.public", MatchPolicy::Prefix, true, false)],
        });
        let mut publisher = rule("app.news", MatchPolicy::Exact, false, false);
        publisher.allow.publish = true;
        let publisher = Grants::for_role(&RoleConfig {
            name: "publisher".into(),
            permissions: vec![publisher],
        });
        (member, publisher)
    }

    #[test]
    fn several_roles_allow_what_any_of_them_allows() {
        let (member, publisher) = member_and_publisher();
        let both = Grants::any_of([member, publisher]);
        assert!(both.allows(Action::Subscribe, "app.public.x"));
        assert!(both.allows(Action::Publish, "app.news"));
        assert!(!both.allows(Action::Publish, "app.public.x"));
        assert!(!Grants::any_of([]).allows(Action::Subscribe, "app.public.x"));
    }

    #[test]
    fn decisions_are_cached_per_action_and_uri_and_bounded() {
        let (member, _) = member_and_publisher();
        let mut cache = DecisionCache::default();
        assert!(cache.is_empty());
        for _ in 0..10 {
            assert!(cache.allows(&member, Action::Subscribe, "app.public.a"));
            assert!(!cache.allows(&member, Action::Publish, "app.public.a"));
        }
        assert_eq!(cache.walks(), 2, "one walk per distinct (action, uri)");
        assert_eq!(cache.len(), 1);
        for i in 0..(3 * DECISION_CACHE_CAPACITY) {
            let uri = format!("app.public.t{i}");
            assert!(cache.allows(&member, Action::Subscribe, &uri));
            assert!(cache.len() <= DECISION_CACHE_CAPACITY);
        }
        assert!(!cache.allows(&member, Action::Subscribe, "other"));
    }
}

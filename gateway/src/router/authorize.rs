//! Role permissions: which actions a session may take on which URIs. Deny by default; when several rules
//! match a URI, the most specific one decides (an exact rule beats any pattern, a longer pattern beats a
//! shorter one).

use std::sync::Arc;

use switchboard_config::{Allow, MatchPolicy, RoleConfig};

/// The four WAMP actions that permissions govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
struct Rule {
    uri: String,
    policy: MatchPolicy,
    allow: Allow,
}

impl Rule {
    /// Higher is more specific: exact rules first, then by pattern length.
    fn specificity(&self) -> (bool, usize) {
        (self.policy == MatchPolicy::Exact, self.uri.len())
    }
}

/// The compiled permissions of one role, shared by every session holding it.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    rules: Arc<[Rule]>,
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
            rules: rules.into(),
        }
    }

    /// Does the most specific rule matching `uri` allow `action`? No matching rule means no.
    pub fn allows(&self, action: Action, uri: &str) -> bool {
        self.rules
            .iter()
            .filter(|rule| rule.policy.matches(&rule.uri, uri))
            .max_by_key(|rule| rule.specificity())
            .is_some_and(|rule| action.allowed_by(&rule.allow))
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
}

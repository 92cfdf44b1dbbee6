//! Which of a pattern's URIs one role's rules allow. A pattern subscription (`prefix` `app.public.`,
//! `wildcard` `app..secret`) stands for many concrete topics, and a deny rule may cover some of them:
//! checking the pattern's text as if it were a topic lets a subscriber cross that rule. Here the rules are
//! compared with the pattern itself; the answer is certain when it says `All` or `None`, and `Some` sends
//! the decision to delivery time, where every event's concrete topic is checked.

use switchboard_config::MatchPolicy;

use super::authorize::{Action, Coverage, Rule};

/// The coverage of `action` on `pattern` (a `prefix` or `wildcard` pattern) by one role's `rules`.
pub(super) fn of_rules(
    rules: &[Rule],
    action: Action,
    pattern: &str,
    policy: MatchPolicy,
) -> Coverage {
    let overlapping: Vec<&Rule> = rules
        .iter()
        .filter(|rule| may_overlap(rule, pattern, policy))
        .collect();
    if !overlapping.iter().any(|rule| rule.allows(action)) {
        return Coverage::None;
    }
    // A rule matching every URI of the pattern decides for all of them when every rule at least as
    // specific that could match one of them decides the same way: whichever rule wins, the answer is
    // the covering rule's.
    let decided = |allowed: bool| {
        rules.iter().any(|covering| {
            covering.allows(action) == allowed
                && covers(covering, pattern, policy)
                && overlapping.iter().all(|other| {
                    std::ptr::eq(*other, covering)
                        || other.specificity() < covering.specificity()
                        || other.allows(action) == allowed
                })
        })
    };
    if decided(true) {
        Coverage::All
    } else if decided(false) {
        Coverage::None
    } else {
        Coverage::Some
    }
}

/// The fixed start of a wildcard pattern: everything before its first empty (wildcard) component, with
/// the dot; the whole pattern when it has none (then it matches one URI only).
fn wildcard_lead(pattern: &str) -> &str {
    let mut offset = 0;
    for component in pattern.split('.') {
        if component.is_empty() {
            return &pattern[..offset];
        }
        offset += component.len() + 1;
    }
    pattern
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.split('.').any(str::is_empty)
}

/// True when one string starts with the other: some URI may start with both.
fn prefix_compatible(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Does `rule` match every URI that `pattern` matches?
fn covers(rule: &Rule, pattern: &str, policy: MatchPolicy) -> bool {
    match (rule.policy, policy) {
        (MatchPolicy::Exact, _) => false,
        (MatchPolicy::Prefix, MatchPolicy::Prefix) => pattern.starts_with(&rule.uri),
        (MatchPolicy::Prefix, _) => wildcard_lead(pattern).starts_with(&rule.uri),
        (MatchPolicy::Wildcard, MatchPolicy::Wildcard) => {
            let mut ours = rule.uri.split('.');
            let mut theirs = pattern.split('.');
            loop {
                match (ours.next(), theirs.next()) {
                    (None, None) => return true,
                    (Some(r), Some(p)) if r.is_empty() || (!p.is_empty() && r == p) => {}
                    _ => return false,
                }
            }
        }
        (MatchPolicy::Wildcard, _) => false,
    }
}

/// Could `rule` match some URI that `pattern` matches? May say yes when unsure, never no when it could.
fn may_overlap(rule: &Rule, pattern: &str, policy: MatchPolicy) -> bool {
    match (rule.policy, policy) {
        (MatchPolicy::Exact, _) => policy.matches(pattern, &rule.uri),
        (MatchPolicy::Prefix, MatchPolicy::Prefix) => prefix_compatible(&rule.uri, pattern),
        (MatchPolicy::Prefix, _) if !has_wildcard(pattern) => pattern.starts_with(&rule.uri),
        (MatchPolicy::Prefix, _) => prefix_compatible(&rule.uri, wildcard_lead(pattern)),
        (MatchPolicy::Wildcard, MatchPolicy::Wildcard) => {
            let mut ours = rule.uri.split('.');
            let mut theirs = pattern.split('.');
            loop {
                match (ours.next(), theirs.next()) {
                    (None, None) => return true,
                    (Some(r), Some(p)) if r.is_empty() || p.is_empty() || r == p => {}
                    _ => return false,
                }
            }
        }
        (MatchPolicy::Wildcard, _) => prefix_compatible(wildcard_lead(&rule.uri), pattern),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_config::{Allow, Permission, RoleConfig};

    use super::super::authorize::Grants;
    use super::*;

    fn rule(uri: &str, policy: MatchPolicy, subscribe: bool) -> Permission {
        Permission {
            uri: uri.into(),
            match_policy: policy,
            allow: Allow {
                subscribe,
                ..Allow::default()
            },
        }
    }

    fn grants(rules: Vec<Permission>) -> Grants {
        Grants::for_role(&RoleConfig {
            name: "r".into(),
            permissions: rules,
        })
    }

    fn coverage(grants: &Grants, pattern: &str, policy: MatchPolicy) -> Coverage {
        grants.coverage(Action::Subscribe, pattern, policy)
    }

    use MatchPolicy::{Exact, Prefix, Wildcard};

    #[test]
    fn a_deny_under_an_allow_makes_a_pattern_partial() {
        let g = grants(vec![
            rule("app.public", Prefix, true),
            rule("app.public.secret", Exact, false),
        ]);
        assert_eq!(coverage(&g, "app.public.", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "app.public.", Wildcard), Coverage::Some);
        // Four components never match the three of `app.public.secret`.
        assert_eq!(coverage(&g, "app.public..", Wildcard), Coverage::All);
        assert_eq!(coverage(&g, "app.public.news.", Prefix), Coverage::All);
        assert_eq!(coverage(&g, "app.public.news..", Wildcard), Coverage::All);
        assert_eq!(coverage(&g, "app.public.secret", Exact), Coverage::None);
        assert_eq!(coverage(&g, "app.other", Prefix), Coverage::None);
        assert_eq!(coverage(&g, "app.", Prefix), Coverage::Some);
    }

    #[test]
    fn an_exact_allow_does_not_cover_a_prefix_of_the_same_text() {
        let g = grants(vec![rule("app.public.news", Exact, true)]);
        assert_eq!(coverage(&g, "app.public.news", Exact), Coverage::All);
        assert_eq!(coverage(&g, "app.public.news", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "app.public.", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "app.public.newsroom", Prefix), Coverage::None);
        assert_eq!(coverage(&g, "app..news", Wildcard), Coverage::Some);
        assert_eq!(coverage(&g, "app..weather", Wildcard), Coverage::None);
    }

    #[test]
    fn an_allow_under_a_deny_is_partial_and_the_deny_alone_is_none() {
        let g = grants(vec![
            rule("app", Prefix, false),
            rule("app.open.", Prefix, true),
        ]);
        assert_eq!(coverage(&g, "app.", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "app.open.x", Prefix), Coverage::All);
        assert_eq!(coverage(&g, "app.closed.", Prefix), Coverage::None);
        assert_eq!(coverage(&g, "app..x", Wildcard), Coverage::Some);
        assert_eq!(coverage(&g, "app.open..", Wildcard), Coverage::All);
    }

    #[test]
    fn wildcard_rules_against_patterns() {
        let g = grants(vec![
            rule("com..update", Wildcard, true),
            rule("com.secret.update", Exact, false),
        ]);
        assert_eq!(coverage(&g, "com..update", Wildcard), Coverage::Some);
        assert_eq!(coverage(&g, "com.order.update", Wildcard), Coverage::All);
        assert_eq!(coverage(&g, "com..create", Wildcard), Coverage::None);
        assert_eq!(coverage(&g, "com.", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "org.", Prefix), Coverage::None);
    }

    #[test]
    fn a_deny_that_shadows_every_allow_refuses_the_pattern() {
        let g = grants(vec![
            rule("app.", Prefix, true),
            rule("app.secret.", Prefix, false),
        ]);
        assert_eq!(coverage(&g, "app.secret.", Prefix), Coverage::None);
        assert_eq!(coverage(&g, "app.secret.x", Prefix), Coverage::None);
        assert_eq!(coverage(&g, "app.secret..", Wildcard), Coverage::None);
        assert_eq!(coverage(&g, "app.secret", Prefix), Coverage::Some);
        assert_eq!(coverage(&g, "w.s.x", Wildcard), Coverage::None);
        // An allow more specific than the deny keeps part of it open.
        let g = grants(vec![
            rule("app.", Prefix, true),
            rule("app.secret.", Prefix, false),
            rule("app.secret.open", Exact, true),
        ]);
        assert_eq!(coverage(&g, "app.secret.", Prefix), Coverage::Some);
    }

    #[test]
    fn allow_everything_covers_every_pattern() {
        let g = grants(vec![rule("", Prefix, true)]);
        for (pattern, policy) in [("", Prefix), ("a.", Prefix), ("..", Wildcard)] {
            assert_eq!(coverage(&g, pattern, policy), Coverage::All, "{pattern}");
        }
        assert_eq!(coverage(&Grants::default(), "", Prefix), Coverage::None);
    }

    #[test]
    fn several_roles_cover_what_any_covers() {
        let narrow = grants(vec![rule("app.a", Exact, true)]);
        let wide = grants(vec![rule("app.", Prefix, true)]);
        let both = Grants::any_of([narrow.clone(), wide]);
        assert_eq!(coverage(&both, "app.", Prefix), Coverage::All);
        assert_eq!(coverage(&narrow, "app.", Prefix), Coverage::Some);
    }

    /// Whatever the coverage says must agree with deciding each concrete topic one by one.
    #[test]
    fn coverage_agrees_with_per_topic_decisions() {
        let roles = [
            grants(vec![rule("a", Prefix, true), rule("a.b.s", Exact, false)]),
            grants(vec![rule("a.b", Exact, true)]),
            grants(vec![rule("a", Prefix, false), rule("a.b.", Prefix, true)]),
            grants(vec![
                rule("a..s", Wildcard, true),
                rule("a.x", Prefix, false),
            ]),
            grants(vec![rule("", Prefix, true), rule("a..", Wildcard, false)]),
        ];
        let topics = [
            "a", "a.b", "a.b.s", "a.b.t", "a.bc", "a.x.s", "a.y.s", "a.b.s.t", "b", "a.x", "a.xs.s",
        ];
        let patterns = [
            ("a", Prefix),
            ("a.", Prefix),
            ("a.b", Prefix),
            ("a.b.", Prefix),
            ("a..", Wildcard),
            ("a..s", Wildcard),
            ("a.b.", Wildcard),
            ("", Prefix),
            ("..", Wildcard),
        ];
        for g in &roles {
            for (pattern, policy) in patterns {
                let matching: Vec<&str> = topics
                    .iter()
                    .copied()
                    .filter(|t| policy.matches(pattern, t))
                    .collect();
                let allowed = matching
                    .iter()
                    .filter(|t| g.allows(Action::Subscribe, t))
                    .count();
                match coverage(g, pattern, policy) {
                    Coverage::All => assert_eq!(allowed, matching.len(), "{pattern} {g:?}"),
                    Coverage::None => assert_eq!(allowed, 0, "{pattern} {g:?}"),
                    Coverage::Some => {}
                }
            }
        }
    }
}

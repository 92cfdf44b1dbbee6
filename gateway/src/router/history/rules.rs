//! Which topics keep history, and for how long: the realm's `[[realms.history]]` entries.

use std::time::Duration;

use switchboard_config::{HistoryConfig, MatchPolicy};

/// What one topic keeps: its newest `limit` events for at most `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    /// Most events kept for the topic.
    pub limit: usize,
    /// Longest time an event is kept.
    pub ttl: Duration,
}

/// One `[[realms.history]]` entry.
#[derive(Debug, Clone)]
struct Rule {
    uri: String,
    policy: MatchPolicy,
    keep: Keep,
}

/// The realm's history entries, most specific first: an exact entry beats any pattern, a longer pattern
/// beats a shorter one (the same rule as permissions).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The entries of a realm's configuration.
    pub(crate) fn from_config(entries: &[HistoryConfig]) -> Self {
        let mut rules: Vec<Rule> = entries
            .iter()
            .map(|entry| Rule {
                uri: entry.uri.clone(),
                policy: entry.match_policy,
                keep: Keep {
                    limit: entry.limit,
                    ttl: Duration::from_secs(entry.ttl_s),
                },
            })
            .collect();
        rules.sort_by_key(|rule| {
            (
                rule.policy != MatchPolicy::Exact,
                std::cmp::Reverse(rule.uri.len()),
            )
        });
        Rules { rules }
    }

    /// What `topic` keeps, if any entry matches it.
    pub(crate) fn keep(&self, topic: &str) -> Option<Keep> {
        self.rules
            .iter()
            .find(|rule| rule.policy.matches(&rule.uri, topic))
            .map(|rule| rule.keep)
    }

    /// Does every topic a subscription to `uri` under `policy` can receive keep history? Only then can
    /// its history be complete; a subscription reaching topics without history cannot be recovered.
    pub(crate) fn cover(&self, uri: &str, policy: MatchPolicy) -> bool {
        self.rules.iter().any(|rule| match (rule.policy, policy) {
            (_, MatchPolicy::Exact) => rule.policy.matches(&rule.uri, uri),
            (MatchPolicy::Prefix, MatchPolicy::Prefix) => uri.starts_with(&rule.uri),
            (MatchPolicy::Prefix, MatchPolicy::Wildcard) => {
                wildcard_prefix(uri).starts_with(&rule.uri)
            }
            (MatchPolicy::Wildcard, MatchPolicy::Wildcard) => rule.uri == uri,
            _ => false,
        })
    }
}

/// The text every topic a wildcard pattern matches starts with: its components before the first empty
/// one, each followed by a dot (`a.b..d` -> `a.b.`); the pattern itself when it has no empty component.
fn wildcard_prefix(pattern: &str) -> String {
    let components: Vec<&str> = pattern.split('.').collect();
    match components.iter().position(|c| c.is_empty()) {
        None => pattern.to_string(),
        Some(first_empty) => components[..first_empty]
            .iter()
            .map(|c| format!("{c}."))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(entries: &[(&str, MatchPolicy, usize)]) -> Rules {
        Rules::from_config(
            &entries
                .iter()
                .map(|(uri, policy, limit)| HistoryConfig {
                    uri: uri.to_string(),
                    match_policy: *policy,
                    limit: *limit,
                    ttl_s: 60,
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn the_most_specific_entry_decides() {
        let rules = rules(&[
            ("models.", MatchPolicy::Prefix, 10),
            ("models.shop.order", MatchPolicy::Exact, 3),
            ("models.shop.", MatchPolicy::Prefix, 5),
        ]);
        assert_eq!(rules.keep("models.shop.order").map(|k| k.limit), Some(3));
        assert_eq!(rules.keep("models.shop.item").map(|k| k.limit), Some(5));
        assert_eq!(rules.keep("models.blog.post").map(|k| k.limit), Some(10));
        assert_eq!(rules.keep("chat.room"), None);
    }

    #[test]
    fn coverage_of_subscriptions() {
        let rules = rules(&[("models.", MatchPolicy::Prefix, 10)]);
        assert!(rules.cover("models.shop.order", MatchPolicy::Exact));
        assert!(rules.cover("models.shop.", MatchPolicy::Prefix));
        assert!(rules.cover("models.shop..update", MatchPolicy::Wildcard));
        assert!(
            !rules.cover("models", MatchPolicy::Prefix),
            "also reaches modelsX"
        );
        assert!(!rules.cover("chat.room", MatchPolicy::Exact));
        assert!(!rules.cover("..update", MatchPolicy::Wildcard));
    }
}

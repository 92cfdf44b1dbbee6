//! WAMP URI rules, shared by the config validator (permission patterns) and the router (every URI a peer
//! sends), so that both sides agree on what a valid URI or pattern is.

use serde::{Deserialize, Serialize};

/// How a URI pattern matches a concrete URI: the WAMP pattern-based subscription and registration policies,
/// also used by permissions (the Crossbar `match` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MatchPolicy {
    /// The pattern equals the URI.
    #[default]
    Exact,
    /// The URI starts with the pattern (string prefix, as in the WAMP spec; `""` matches everything).
    Prefix,
    /// Same number of dot-separated components; an empty pattern component matches any component.
    Wildcard,
}

impl MatchPolicy {
    /// Parses the WAMP `match` option value; `None` for an unknown policy.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "exact" => Some(Self::Exact),
            "prefix" => Some(Self::Prefix),
            "wildcard" => Some(Self::Wildcard),
            _ => None,
        }
    }

    /// The WAMP name of the policy, as sent in options and details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Prefix => "prefix",
            Self::Wildcard => "wildcard",
        }
    }

    /// Does `uri` match `pattern` under this policy? `pattern` must have passed [`validate`].
    pub fn matches(self, pattern: &str, uri: &str) -> bool {
        match self {
            Self::Exact => pattern == uri,
            Self::Prefix => uri.starts_with(pattern),
            Self::Wildcard => {
                let mut p = pattern.split('.');
                let mut u = uri.split('.');
                loop {
                    match (p.next(), u.next()) {
                        (None, None) => return true,
                        (Some(pc), Some(uc)) if pc.is_empty() || pc == uc => {}
                        _ => return false,
                    }
                }
            }
        }
    }
}

/// URI prefixes that belong to the router: its meta API and its own procedures. No client publishes or
/// registers under them, whatever its role allows; subscribing and calling are permission-checked.
pub const RESERVED_PREFIXES: [&str; 2] = ["wamp.", "switchboard."];

/// True for a URI under one of [`RESERVED_PREFIXES`].
pub fn is_reserved(uri: &str) -> bool {
    RESERVED_PREFIXES
        .iter()
        .any(|prefix| uri.starts_with(prefix))
}

/// Characters no URI may hold: whitespace and `#` (the WAMP rules), control characters (NUL, C0, DEL,
/// C1), and code points that print as nothing (zero-width and joiner characters, bidirectional
/// controls, variation selectors, the byte-order mark, tags): two URIs that look the same to a person
/// must be the same URI, or a permission written for one is crossed with the other.
fn is_forbidden(c: char) -> bool {
    c.is_whitespace()
        || c == '#'
        || c.is_control()
        // Unicode's Default_Ignorable_Code_Point set, and the blanks that print as nothing.
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Checks a URI or URI pattern against the loose WAMP URI rules for its match policy.
///
/// Components are separated by `.` and never contain whitespace, `#`, control characters or
/// non-printing code points. Exact URIs have no empty component; wildcard patterns may (an empty
/// component is the wildcard); prefix patterns may be empty or end with a dot. Returns the reason when
/// the URI is not valid. Length limits are the caller's (`gateway.max_uri_bytes` for peers).
pub fn validate(uri: &str, policy: MatchPolicy) -> Result<(), String> {
    if let Some(bad) = uri.chars().find(|c| is_forbidden(*c)) {
        return Err(format!(
            "URI {uri:?} contains the forbidden character {bad:?}"
        ));
    }
    match policy {
        MatchPolicy::Exact if uri.is_empty() => Err("the URI is empty".to_string()),
        MatchPolicy::Exact if uri.split('.').any(str::is_empty) => {
            Err(format!("URI {uri:?} has an empty component"))
        }
        MatchPolicy::Wildcard if uri.is_empty() => {
            Err("an empty wildcard pattern matches nothing useful; use prefix \"\"".to_string())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_uris_follow_the_loose_rules() {
        assert!(validate("com.myapp.topic1", MatchPolicy::Exact).is_ok());
        assert!(validate("com.myapp..topic1", MatchPolicy::Exact).is_err());
        assert!(validate("com.my app", MatchPolicy::Exact).is_err());
        assert!(validate("com.#app", MatchPolicy::Exact).is_err());
        assert!(validate("", MatchPolicy::Exact).is_err());
        assert!(validate(".com", MatchPolicy::Exact).is_err());
    }

    #[test]
    fn control_and_invisible_characters_are_refused() {
        for uri in [
            "com.a\u{0}b",
            "com.a\u{7}b",
            "com.a\u{7f}",
            "com.a\u{85}",
            "com.a\u{200B}b",
            "com.\u{202E}terces",
            "com.\u{FEFF}a",
            "com.a\u{E0041}",
            "app.\u{1D173}x",
            "app.\u{2800}x",
            "app.\u{1BCA1}x",
        ] {
            let error = validate(uri, MatchPolicy::Exact).unwrap_err();
            assert!(error.contains("forbidden character"), "{uri:?}: {error}");
        }
        assert!(validate("com.café.ünïcode", MatchPolicy::Exact).is_ok());
    }

    #[test]
    fn wamp_and_switchboard_are_reserved() {
        assert!(is_reserved("wamp.session.count"));
        assert!(is_reserved("switchboard.model.rows"));
        assert!(!is_reserved("wampy.x"));
        assert!(!is_reserved("com.wamp.x"));
    }

    #[test]
    fn patterns_allow_what_their_policy_needs() {
        assert!(validate("", MatchPolicy::Prefix).is_ok());
        assert!(validate("com.myapp.", MatchPolicy::Prefix).is_ok());
        assert!(validate("com..update", MatchPolicy::Wildcard).is_ok());
        assert!(validate("com. x", MatchPolicy::Wildcard).is_err());
    }

    #[test]
    fn matching_follows_the_spec() {
        assert!(MatchPolicy::Prefix.matches("com.myapp", "com.myapp.topic1"));
        assert!(MatchPolicy::Prefix.matches("", "anything"));
        assert!(!MatchPolicy::Prefix.matches("com.other", "com.myapp.topic1"));
        assert!(MatchPolicy::Wildcard.matches("com..update", "com.order.update"));
        assert!(!MatchPolicy::Wildcard.matches("com..update", "com.order.x.update"));
        assert!(!MatchPolicy::Wildcard.matches("com..update", "com.order.create"));
        assert!(MatchPolicy::Exact.matches("a.b", "a.b"));
        assert!(!MatchPolicy::Exact.matches("a.b", "a.b.c"));
    }
}

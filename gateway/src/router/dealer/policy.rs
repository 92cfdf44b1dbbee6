//! The two choices a WAMP client makes about calls: how a shared registration picks its callee, and how a
//! CANCEL treats the running invocation. Named as on the wire, so node messages carry them as they are.

use serde::{Deserialize, Serialize};

/// How a shared registration picks its callee (the `invoke` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvokePolicy {
    /// Only one callee may register.
    Single,
    /// Callees in turn.
    RoundRobin,
    /// A random callee.
    Random,
    /// The callee that registered first.
    First,
    /// The callee that registered last.
    Last,
}

impl InvokePolicy {
    /// Parses the `invoke` option (already checked by the decoder); absent means `single`.
    pub fn from_option(name: Option<&str>) -> Self {
        match name {
            Some("roundrobin") => Self::RoundRobin,
            Some("random") => Self::Random,
            Some("first") => Self::First,
            Some("last") => Self::Last,
            _ => Self::Single,
        }
    }

    /// The option's value, for error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::RoundRobin => "roundrobin",
            Self::Random => "random",
            Self::First => "first",
            Self::Last => "last",
        }
    }
}

/// How a caller's CANCEL treats the running invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelMode {
    /// Answer the caller at once; let the callee finish unaware.
    Skip,
    /// Interrupt the callee and answer the caller with the callee's reply.
    Kill,
    /// Interrupt the callee and answer the caller at once.
    KillNoWait,
}

impl CancelMode {
    /// Parses CANCEL.Options.mode (already checked by the decoder); absent means `kill`.
    pub fn from_option(name: Option<&str>) -> Self {
        match name {
            Some("skip") => Self::Skip,
            Some("killnowait") => Self::KillNoWait,
            _ => Self::Kill,
        }
    }

    /// The option's value, as INTERRUPT.Options.mode says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Kill => "kill",
            Self::KillNoWait => "killnowait",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_name_policies_as_wamp_does() {
        for policy in [
            InvokePolicy::Single,
            InvokePolicy::RoundRobin,
            InvokePolicy::Random,
            InvokePolicy::First,
            InvokePolicy::Last,
        ] {
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{}\"", policy.as_str()));
            assert_eq!(InvokePolicy::from_option(Some(policy.as_str())), policy);
        }
        for mode in [CancelMode::Skip, CancelMode::Kill, CancelMode::KillNoWait] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
        }
    }
}

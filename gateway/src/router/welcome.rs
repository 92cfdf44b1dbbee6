//! The WELCOME message's Details: who the session is and which router roles and advanced features we
//! implement. Strict clients check these (Autobahn|Python wants real booleans, wampy.js reads
//! `roles.<role>.features` unguarded), so the shape is fixed here in one place.

use serde_json::{json, Value};

use crate::wamp::Dict;

/// Features the broker implements, announced as `roles.broker.features`.
const BROKER_FEATURES: &[&str] = &[
    "pattern_based_subscription",
    "publisher_exclusion",
    "publisher_identification",
    "subscriber_blackwhite_listing",
    "event_history",
    "event_retention",
    "session_meta_api",
    "subscription_meta_api",
];

/// Features the dealer implements, announced as `roles.dealer.features`.
const DEALER_FEATURES: &[&str] = &[
    "progressive_call_results",
    "call_canceling",
    "call_timeout",
    "caller_identification",
    "shared_registration",
    "testament_meta_api",
    "session_meta_api",
];

fn features(names: &[&str]) -> Value {
    Value::Object(
        names
            .iter()
            .map(|n| (n.to_string(), Value::Bool(true)))
            .collect(),
    )
}

/// WELCOME.Details for a session that joined `realm` as `authid` with `authrole` via `authmethod`.
pub(super) fn details(realm: &str, authid: &str, authrole: &str, authmethod: &str) -> Dict {
    let value = json!({
        "realm": realm,
        "authid": authid,
        "authrole": authrole,
        "authmethod": authmethod,
        "authprovider": "static",
        "agent": concat!("switchboard/", env!("CARGO_PKG_VERSION")),
        "roles": {
            "broker": { "features": features(BROKER_FEATURES) },
            "dealer": { "features": features(DEALER_FEATURES) },
        },
    });
    match value {
        Value::Object(map) => map,
        _ => Dict::new(),
    }
}

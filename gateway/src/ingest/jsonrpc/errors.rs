//! The JSON-RPC errors ingestion answers with: the standard codes, plus `-32001` for signatures. Every
//! error names what was wrong (the field, or which signature check failed) in its message and `data`.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use switchboard_wire::{EventError, SignatureError};

use crate::ingest::publish::PublishError;

/// Invalid method parameters (JSON-RPC 2.0 standard code).
pub const INVALID_PARAMS: i32 = -32602;
/// Signature missing, malformed, invalid, expired or replayed (Switchboard's server error).
pub const SIGNATURE_REJECTED: i32 = -32001;
/// Clustered: the cluster's event log (RabbitMQ) could not take the event; nothing was delivered and
/// the caller may retry (Switchboard's server error).
pub const CLUSTER_UNAVAILABLE: i32 = -32002;
/// Clustered: a management call's answer is incomplete, some live nodes did not answer within the
/// deadline; `data` holds the answer of the others (`partial`) and names the `missing` nodes.
pub const CLUSTER_INCOMPLETE: i32 = -32003;

/// `-32602` naming `field`.
pub fn invalid_params(field: &str, reason: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        INVALID_PARAMS,
        format!("invalid params: {field}: {reason}"),
        Some(json!({"field": field})),
    )
}

/// `-32602` for an event that failed validation.
pub fn invalid_event(error: &EventError) -> ErrorObjectOwned {
    invalid_params(&error.field, &error.reason)
}

/// `-32602` for an event the router could not place (unknown realm), `-32002` for one the cluster's
/// event log could not take; `prefix` locates it in a batch.
pub fn unpublishable(error: &PublishError, prefix: Option<&str>) -> ErrorObjectOwned {
    if let PublishError::Cluster(append) = error {
        return ErrorObjectOwned::owned(
            CLUSTER_UNAVAILABLE,
            append.to_string(),
            Some(json!({"reason": append.which(), "retry": true, "at": prefix})),
        );
    }
    let field = match prefix {
        Some(prefix) => format!("{prefix}.{}", error.field()),
        None => error.field().to_string(),
    };
    let reason = error.to_string();
    let reason = reason
        .strip_prefix(&format!("{}: ", error.field()))
        .unwrap_or(&reason);
    invalid_params(&field, reason)
}

/// `-32003`: `missing` did not answer; `partial` is what the `answered` nodes said, combined.
pub fn cluster_incomplete(
    missing: &[String],
    answered: Vec<String>,
    partial: serde_json::Value,
) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        CLUSTER_INCOMPLETE,
        format!(
            "cluster: node(s) {} did not answer within {} s; data.partial is the other nodes' answer",
            missing.join(", "),
            crate::cluster::nodes::DEADLINE.as_secs()
        ),
        Some(json!({"missing": missing, "answered": answered, "partial": partial, "retry": true})),
    )
}

/// `-32001` saying which signature check failed.
pub fn signature(error: &SignatureError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        SIGNATURE_REJECTED,
        error.to_string(),
        Some(json!({"reason": error.which()})),
    )
}

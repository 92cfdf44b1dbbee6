//! The arguments of a procedure the router answers itself (`get_events`, `model.rows`): positional or
//! keyword, each checked with an error that names it and what it must be.

use serde_json::Value;

use super::super::Refusal;
use crate::wamp::message::MAX_ID;
use crate::wamp::{Dict, Id, Payload};

/// ERROR when an answer would not fit the session's outbound queue.
pub(super) const ANSWER_TOO_LARGE: &str = "switchboard.error.answer_too_large";

/// The most bytes one answer of the router's own procedures may take: half of a session's outbound queue
/// bound, so that an answer never closes a healthy session as a slow consumer.
pub(super) fn answer_budget(outbound_queue_bytes: usize) -> usize {
    outbound_queue_bytes / 2
}

/// How many of `sizes` (JSON sizes of the answer's items, in answer order) fit `budget`; `None` when all
/// of them do.
pub(super) fn items_that_fit(
    sizes: impl Iterator<Item = usize>,
    budget: usize,
) -> Option<(usize, usize)> {
    let mut total = 0usize;
    let mut fit = None;
    for (count, size) in sizes.enumerate() {
        total = total.saturating_add(size + 1);
        if total > budget && fit.is_none() {
            fit = Some(count);
        }
    }
    fit.map(|fit| (fit, total))
}

/// The refusal of an answer of `items` items and `bytes` bytes, of which `fit` fit the session's budget.
pub(super) fn too_large(
    what: &str,
    items: usize,
    bytes: usize,
    fit: usize,
    budget: usize,
) -> Refusal {
    let advice = if fit == 0 {
        "one item alone is larger: raise gateway.outbound_queue_bytes".to_string()
    } else {
        format!("ask for at most {fit} (limit={fit})")
    };
    Refusal::new(
        ANSWER_TOO_LARGE,
        format!(
            "{items} {what} would take {bytes} bytes, over this session's budget of {budget} bytes (half of \
             gateway.outbound_queue_bytes): {advice}"
        ),
    )
}

/// ERROR for an argument that is missing or of the wrong kind.
pub(super) fn invalid(message: String) -> Refusal {
    Refusal::new("wamp.error.invalid_argument", message)
}

/// A CALL's arguments, read by position (when the procedure has positional forms) or by name.
pub(super) struct Arguments<'a> {
    procedure: &'a str,
    args: &'a [Value],
    kwargs: &'a Dict,
}

/// Keyword arguments of a CALL that has none.
static NO_KWARGS: std::sync::LazyLock<Dict> = std::sync::LazyLock::new(Dict::new);

impl<'a> Arguments<'a> {
    /// The arguments of a CALL to `procedure`; an opaque (end-to-end encrypted) payload is refused.
    pub(super) fn of(procedure: &'a str, payload: &'a Payload) -> Result<Self, Refusal> {
        let (args, kwargs): (&[Value], &Dict) = match payload {
            Payload::Empty => (&[], &NO_KWARGS),
            Payload::Args(args) => (args, &NO_KWARGS),
            Payload::ArgsKwargs(args, kwargs) => (args, kwargs),
            Payload::Transparent(_) => {
                return Err(invalid(format!("{procedure} takes plain arguments")))
            }
        };
        Ok(Arguments {
            procedure,
            args,
            kwargs,
        })
    }

    /// A string argument, `None` when absent.
    pub(super) fn text(
        &self,
        position: Option<usize>,
        name: &str,
    ) -> Result<Option<&'a str>, Refusal> {
        match self.get(position, name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(invalid(format!("{name} must be a string, got {other}"))),
        }
    }

    /// A string argument that must be there.
    pub(super) fn required_text(&self, position: usize, name: &str) -> Result<&'a str, Refusal> {
        self.text(Some(position), name)?
            .ok_or_else(|| self.missing(name))
    }

    /// An id argument that must be there.
    pub(super) fn required_id(&self, position: usize, name: &str) -> Result<Id, Refusal> {
        self.id(Some(position), name)?
            .ok_or_else(|| self.missing(name))
    }

    fn missing(&self, name: &str) -> Refusal {
        invalid(format!(
            "{}: the argument {name} is missing",
            self.procedure
        ))
    }

    /// The argument at `position` (when given) or else named `name`; null counts as absent.
    pub(super) fn get(&self, position: Option<usize>, name: &str) -> Option<&'a Value> {
        position
            .and_then(|p| self.args.get(p))
            .or_else(|| self.kwargs.get(name))
            .filter(|value| !value.is_null())
    }

    /// A boolean keyword argument, false when absent.
    pub(super) fn flag(&self, name: &str) -> Result<bool, Refusal> {
        match self.get(None, name) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(invalid(format!(
                "{name} must be true or false, got {other}"
            ))),
        }
    }

    /// A count from 1 to `max`, `default` when absent.
    pub(super) fn count(
        &self,
        position: Option<usize>,
        name: &str,
        default: u64,
        max: u64,
    ) -> Result<usize, Refusal> {
        let count = match self.get(position, name) {
            None => default,
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    invalid(format!(
                        "{name} must be an integer from 1 to {max}, got {value}"
                    ))
                })?,
        };
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// A WAMP id (an integer from 1 to 2^53), `None` when absent.
    pub(super) fn id(&self, position: Option<usize>, name: &str) -> Result<Option<Id>, Refusal> {
        self.get(position, name)
            .map(|value| {
                value
                    .as_u64()
                    .filter(|id| (1..=MAX_ID).contains(id))
                    .ok_or_else(|| {
                        invalid(format!(
                            "{name} must be an id (an integer from 1 to 2^53), got {value}"
                        ))
                    })
            })
            .transpose()
    }
}

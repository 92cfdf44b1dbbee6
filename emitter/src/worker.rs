//! The emitter's background task: takes what is buffered (up to the transport's batch size), sends it
//! through the transport, retries with backoff while the gateway or broker is unreachable, and hands
//! each waiting `emit` its outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::event::Event;
use crate::transport::{Receipt, SendError, Transport};
use crate::EmitError;

/// Longest pause between two attempts while the gateway is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One buffered event and whoever waits for its outcome.
pub(crate) struct Job {
    pub(crate) event: Event,
    pub(crate) reply: oneshot::Sender<Result<Receipt, EmitError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("topic", &self.event.topic)
            .finish()
    }
}

/// The transport's latest failure, shared with the waiters so that a timeout can say why.
#[derive(Debug, Clone, Default)]
pub(crate) struct LastError(Arc<Mutex<Option<String>>>);

impl LastError {
    pub(crate) fn set(&self, error: Option<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The background task: takes what is buffered (up to the transport's batch size), sends it, and hands
/// each waiter its outcome.
pub(crate) async fn run(
    mut transport: Transport,
    mut jobs: mpsc::Receiver<Job>,
    last_error: LastError,
) {
    let max_batch = transport.max_batch();
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        deliver(&mut transport, &mut batch, &last_error).await;
        batch.clear();
    }
    transport.close().await;
}

/// Sends `batch` until the gateway answers, retrying with backoff on network failures. Events whose
/// caller stopped waiting (timeout) are not sent any more: the caller already got an error for them.
async fn deliver(transport: &mut Transport, batch: &mut Vec<Job>, last_error: &LastError) {
    // Doubling by hand: a retry crate (backon) would not make this loop, with its partial successes, shorter.
    let mut backoff = Duration::from_millis(50);
    loop {
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        let events: Vec<&Event> = batch.iter().map(|job| &job.event).collect();
        let sent = transport.send(&events).await;
        last_error.set(match &sent {
            Err(SendError::Retry(error)) => Some(error.clone()),
            _ => None,
        });
        match sent {
            Ok(outcomes) => {
                let sent = outcomes.len().min(batch.len());
                for (job, outcome) in batch.drain(..sent).zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
                if batch.is_empty() {
                    return;
                }
                // Part of the batch went out; the rest goes again after a pause.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(SendError::Fatal(error)) => {
                let message = error.to_string();
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(copy_error(&error, &message)));
                }
                return;
            }
            Err(SendError::Retry(_)) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The same refusal for every event of a batch refused as a whole.
fn copy_error(error: &EmitError, message: &str) -> EmitError {
    match error {
        EmitError::Rejected { code, message } => EmitError::Rejected {
            code: *code,
            message: message.clone(),
        },
        _ => EmitError::Rejected {
            code: -32603,
            message: message.to_string(),
        },
    }
}

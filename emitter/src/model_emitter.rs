//! Model-change events for one model, the emitter's first-class API: created, updated, deleted, synced.

use serde::Serialize;

use crate::emitter::Emitter;
use crate::model::ModelChange;
use crate::transport::Receipt;
use crate::EmitError;

/// Model-change events for one model: `emitter.model("shop.order").updated(42, &order, &["status"])`.
#[derive(Debug)]
pub struct ModelEmitter<'a> {
    pub(crate) emitter: &'a Emitter,
    pub(crate) model: String,
    pub(crate) eligible_authid: Option<Vec<String>>,
}

impl ModelEmitter<'_> {
    /// Delivers the change only to sessions of these authids (e.g. the row's owner).
    pub fn eligible_authids<S: Into<String>>(
        mut self,
        authids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.eligible_authid = Some(authids.into_iter().map(Into::into).collect());
        self
    }

    /// A row was created.
    pub async fn created(
        &self,
        pk: impl Serialize,
        data: &impl Serialize,
    ) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::created(&self.model, pk, data)?)
            .await
    }

    /// A row was updated; `changed` names the fields that changed.
    pub async fn updated<S: AsRef<str>>(
        &self,
        pk: impl Serialize,
        data: &impl Serialize,
        changed: &[S],
    ) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::updated(&self.model, pk, data, changed)?)
            .await
    }

    /// A row was deleted.
    pub async fn deleted(&self, pk: impl Serialize) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::deleted(&self.model, pk)?).await
    }

    /// Every row of the model, as `(pk, data)` pairs (`orders.iter().map(|o| (o.id, o))`): the gateway
    /// replaces its view of the model with these rows and open pages resync. See
    /// [`ModelChange::synced`] for the kwargs. The rows are serialized before this returns its future,
    /// which therefore holds neither them nor the iterator.
    ///
    /// The sync is one event and must fit the gateway's `[gateway] max_message_bytes` (1 MiB by
    /// default), kwargs and all. A larger one is refused by the gateway: over JSON-RPC as
    /// [`EmitError::Rejected`], while over ZeroMQ and AMQP the receipt comes first and the gateway then
    /// drops (AMQP: dead-letters) the event. Keep a synced model small enough, or raise the limit.
    pub fn sync<'a, P, D>(
        &self,
        rows: impl IntoIterator<Item = (P, &'a D)>,
    ) -> impl std::future::Future<Output = Result<Receipt, EmitError>> + '_
    where
        P: Serialize,
        D: Serialize + ?Sized + 'a,
    {
        let change = ModelChange::synced(&self.model, rows);
        async move { self.emit(change?).await }
    }

    async fn emit(&self, change: ModelChange) -> Result<Receipt, EmitError> {
        let mut event = change.to_event(&self.emitter.model_prefix);
        event.options.eligible_authid = self.eligible_authid.clone();
        self.emitter.emit(event).await
    }
}

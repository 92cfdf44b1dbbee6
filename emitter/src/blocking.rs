//! A blocking handle for synchronous web frameworks: the same emitter, driven by a small runtime of its
//! own, so code without async can emit and wait for the confirmation.

use std::path::Path;

use serde::Serialize;

use crate::builder::EmitterBuilder;
use crate::emitter::Emitter;
use crate::event::Event;
use crate::transport::Receipt;
use crate::EmitError;

/// An [`Emitter`] for synchronous code. Call it from plain threads, never from async code (a blocking
/// wait inside a runtime would stall it; use [`Emitter`] there).
#[derive(Debug)]
pub struct BlockingEmitter {
    emitter: Emitter,
    runtime: tokio::runtime::Runtime,
}

impl BlockingEmitter {
    /// Builds the emitter on a one-thread runtime owned by this handle.
    pub fn new(builder: EmitterBuilder) -> Result<Self, EmitError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-emitter")
            .enable_all()
            .build()
            .map_err(|e| EmitError::Setup {
                transport: "runtime",
                reason: e.to_string(),
            })?;
        let emitter = {
            let _entered = runtime.enter();
            builder.build()?
        };
        Ok(BlockingEmitter { emitter, runtime })
    }

    /// A blocking emitter configured by the shared `switchboard.toml` at `path`.
    pub fn from_config(path: impl AsRef<Path>) -> Result<Self, EmitError> {
        let config = switchboard_config::Config::load(path.as_ref())?;
        Self::new(EmitterBuilder::from_config(&config)?)
    }

    /// Emits one event and blocks until the gateway took it (or the emitter's timeout passes).
    pub fn emit(&self, event: Event) -> Result<Receipt, EmitError> {
        self.runtime.block_on(self.emitter.emit(event))
    }

    /// Emits several events; see [`Emitter::emit_batch`].
    pub fn emit_batch(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Receipt, EmitError>>, EmitError> {
        self.runtime.block_on(self.emitter.emit_batch(events))
    }

    /// The id of the newest publication the gateway stores for `topic`, blocking; see
    /// [`Emitter::last_publication`] for why it exists (read it before querying the database) and
    /// where it needs the gateway's JSON-RPC endpoint.
    pub fn last_publication(&self, topic: &str) -> Result<Option<u64>, EmitError> {
        self.runtime.block_on(self.emitter.last_publication(topic))
    }

    /// Model-change events for `model` (`<app>.<model>`), blocking until confirmed:
    /// `emitter.model("shop.order").updated(42, &order, &["status"])`.
    pub fn model(&self, model: impl Into<String>) -> BlockingModel<'_> {
        BlockingModel {
            handle: self,
            model: model.into(),
        }
    }

    /// The async emitter inside, e.g. for its model helpers from a `block_on` of your own.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// Runs `future` (say, a model helper call) to completion on the handle's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// Blocking model-change helpers; see [`crate::ModelEmitter`] for the async ones.
#[derive(Debug)]
pub struct BlockingModel<'a> {
    handle: &'a BlockingEmitter,
    model: String,
}

impl BlockingModel<'_> {
    /// A row was created.
    pub fn created(&self, pk: impl Serialize, data: &impl Serialize) -> Result<Receipt, EmitError> {
        let model = self.handle.emitter.model(self.model.as_str());
        self.handle.block_on(model.created(pk, data))
    }

    /// A row was updated; `changed` names the fields that changed.
    pub fn updated<S: AsRef<str>>(
        &self,
        pk: impl Serialize,
        data: &impl Serialize,
        changed: &[S],
    ) -> Result<Receipt, EmitError> {
        let model = self.handle.emitter.model(self.model.as_str());
        self.handle.block_on(model.updated(pk, data, changed))
    }

    /// A row was deleted.
    pub fn deleted(&self, pk: impl Serialize) -> Result<Receipt, EmitError> {
        let model = self.handle.emitter.model(self.model.as_str());
        self.handle.block_on(model.deleted(pk))
    }

    /// Every row of the model, as `(pk, data)` pairs; see [`crate::ModelEmitter::sync`], including
    /// its size limit (the whole sync must fit the gateway's `max_message_bytes`, 1 MiB by default).
    pub fn sync<'a, P, D>(
        &self,
        rows: impl IntoIterator<Item = (P, &'a D)>,
    ) -> Result<Receipt, EmitError>
    where
        P: Serialize,
        D: Serialize + ?Sized + 'a,
    {
        let model = self.handle.emitter.model(self.model.as_str());
        self.handle.block_on(model.sync(rows))
    }
}

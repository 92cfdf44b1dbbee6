//! `switchboard emit`: one event (or model change) to a gateway, over the transport the configuration's
//! `[emitter].transport` names. The only user of switchboard-emitter here, and the reason the binary is a
//! package apart from the gateway library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use switchboard_config::Config;
use switchboard_emitter::{EmitterBuilder, Receipt};
use switchboard_wire::{Event, ModelChange, DEFAULT_MODEL_PREFIX};

/// `switchboard emit`: either `--topic` (with `--args`/`--kwargs`) or `--model` with `--action`/`--pk`.
#[derive(clap::Args)]
pub(crate) struct EmitArgs {
    /// Configuration file (switchboard.toml): secret, transport and the gateway's ingestion address.
    #[arg(long, short)]
    config: PathBuf,
    /// Topic URI of a custom event.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    topic: Option<String>,
    /// Positional payload, a JSON array.
    #[arg(long, requires = "topic")]
    args: Option<String>,
    /// Keyword payload, a JSON object.
    #[arg(long, requires = "topic")]
    kwargs: Option<String>,
    /// Model of a model-change event, `<app>.<model>` (topic `models.<app>.<model>`).
    #[arg(long, requires_all = ["action", "pk"])]
    model: Option<String>,
    /// What happened to the row.
    #[arg(long, value_parser = ["created", "updated", "deleted"], requires = "model")]
    action: Option<String>,
    /// Primary key: JSON (`42`, `"a-1"`, `{"id": 1}`); anything that is not JSON is taken as a string.
    #[arg(long, requires = "model")]
    pk: Option<String>,
    /// The row's fields, a JSON object.
    #[arg(long, requires = "model")]
    data: Option<String>,
    /// Fields that changed (`a,b`), for `--action updated`.
    #[arg(long, requires = "model", value_delimiter = ',')]
    changed: Vec<String>,
    /// Seconds to wait for the gateway's confirmation.
    #[arg(long, default_value_t = 10)]
    timeout_s: u64,
}

/// Parses `--NAME` as JSON.
fn json_arg(name: &str, text: Option<&str>) -> anyhow::Result<Option<Value>> {
    text.map(|t| serde_json::from_str(t).with_context(|| format!("--{name} is not valid JSON")))
        .transpose()
}

/// Builds the event from the arguments and sends it, waiting for the gateway's receipt.
pub(crate) fn emit(args: EmitArgs) -> anyhow::Result<Receipt> {
    let event = match &args.model {
        Some(model) => {
            let pk_text = args.pk.as_deref().unwrap_or_default();
            let pk = serde_json::from_str(pk_text).unwrap_or_else(|_| Value::from(pk_text));
            let data =
                json_arg("data", args.data.as_deref())?.unwrap_or_else(|| serde_json::json!({}));
            let change = match args.action.as_deref() {
                Some("created") => ModelChange::created(model, pk, &data)?,
                Some("updated") => ModelChange::updated(model, pk, &data, &args.changed)?,
                _ => ModelChange::deleted(model, pk)?,
            };
            change.to_event(DEFAULT_MODEL_PREFIX)
        }
        None => {
            let mut event = Event::new(args.topic.clone().unwrap_or_default());
            match json_arg("args", args.args.as_deref())? {
                Some(Value::Array(items)) => event.args = items,
                Some(_) => anyhow::bail!("--args must be a JSON array"),
                None => {}
            }
            match json_arg("kwargs", args.kwargs.as_deref())? {
                Some(Value::Object(map)) => event.kwargs = map,
                Some(_) => anyhow::bail!("--kwargs must be a JSON object"),
                None => {}
            }
            event
        }
    };
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let emitter = EmitterBuilder::from_config(&config)?
            .timeout(Duration::from_secs(args.timeout_s))
            .build()?;
        let receipt = emitter.emit(event).await?;
        emitter.close().await?;
        Ok(receipt)
    })
}

//! The `switchboard` command: runs the gateway, emits events to one, mints connection tickets, and checks
//! configuration files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use switchboard_config::Config;
use switchboard_emitter::{EmitterBuilder, Receipt};
use switchboard_gateway::fd_limit;
use switchboard_gateway::ingest::Ingestion;
use switchboard_gateway::router::Router;
use switchboard_gateway::transport::accept::ConnectionLimits;
use switchboard_gateway::transport::http::Server;
use switchboard_wire::{Event, ModelChange, TicketKey, DEFAULT_MODEL_PREFIX};
use tokio_util::sync::CancellationToken;

/// Switchboard: a real-time event gateway (WAMP v2 over WebSocket).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (with the embedded default configuration when no file is given).
    Gateway {
        /// Configuration file (switchboard.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address of the HTTP listener, overriding `[gateway] listen`; port 0 lets the OS choose one.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Once every listener is bound, write their addresses to this file as JSON (atomically:
        /// PATH.tmp, then renamed), e.g. `{"http": "127.0.0.1:41234", "jsonrpc": "127.0.0.1:41235",
        /// "zmq": "tcp://127.0.0.1:41236", "pid": 1234}`; a transport not enabled is left out.
        #[arg(long, value_name = "PATH")]
        ready_file: Option<PathBuf>,
    },
    /// Emit one event (or model change) to a gateway, over the transport of `[emitter].transport`.
    Emit(EmitArgs),
    /// Mint a connection ticket (printed on the last line of stdout) for WAMP ticket authentication.
    Ticket(TicketArgs),
    /// Validate a configuration file; exits non-zero with FILE:LINE and the reason on any error.
    CheckConfig {
        /// Configuration file to check.
        file: PathBuf,
    },
}

/// `switchboard emit`: either `--topic` (with `--args`/`--kwargs`) or `--model` with `--action`/`--pk`.
#[derive(clap::Args)]
struct EmitArgs {
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

/// `switchboard ticket`: signs with the configuration's `[security]` secret.
#[derive(clap::Args)]
struct TicketArgs {
    /// Configuration file (switchboard.toml) holding the shared secret.
    #[arg(long, short)]
    config: PathBuf,
    /// The user's authid.
    #[arg(long)]
    authid: String,
    /// Role to grant (repeat for several; the first is the session's authrole).
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Seconds the ticket stays valid.
    #[arg(long)]
    ttl: u64,
}

/// File descriptors the gateway needs besides its connections (listeners, ingestion, logs, runtime).
const RESERVED_FILES: u64 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Command::Emit(args) => match emit(args) {
            Ok(receipt) => {
                let publication = receipt.publication.map_or(Value::Null, Value::from);
                println!("{}", serde_json::json!({ "publication": publication }));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard emit: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Ticket(args) => match ticket(&args) {
            Ok(ticket) => {
                println!("{ticket}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard ticket: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Gateway {
            config,
            listen,
            ready_file,
        } => {
            init_logging();
            match run_gateway(config, listen, ready_file) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchboard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run_gateway(
    config_path: Option<PathBuf>,
    listen: Option<SocketAddr>,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::load_default_with_env()?,
    };
    if let Some(listen) = listen {
        config.gateway.listen = listen;
    }
    let secret = match config.security.resolve_secret()? {
        Some(secret) => secret,
        None => {
            // Emitters need the secret to sign; without one configured, make one for this run and show it.
            let secret = Alphanumeric.sample_string(&mut rand::rng(), 32);
            eprintln!(
                "switchboard: no [security] secret configured; this run's secret is: {secret}"
            );
            config.security.secret = Some(secret.clone());
            secret
        }
    };
    raise_open_files_limit(config.gateway.max_connections);
    let grace = Duration::from_millis(config.gateway.shutdown_grace_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async move {
        let router = Arc::new(Router::new(&config));
        let server = Server::bind(config.gateway.listen, Arc::clone(&router))
            .await
            .with_context(|| format!("cannot listen on {}", config.gateway.listen))?
            .with_limits(ConnectionLimits::from_config(&config.gateway));
        let addr = server.local_addr()?;
        let realms: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
        match &config_path {
            Some(path) => tracing::info!(config = %path.display(), "configuration loaded"),
            None => tracing::info!("using the embedded default configuration"),
        }
        tracing::info!(
            "listening on http://{addr} (WebSocket ws://{addr}/ws, realms: {})",
            realms.join(", ")
        );
        let ingestion = Ingestion::start(&config, Arc::clone(&router), &secret).await?;
        if let Some(path) = &ready_file {
            write_ready_file(path, addr, &ingestion)
                .with_context(|| format!("cannot write the ready file {}", path.display()))?;
        }
        // One signal stops both: the WebSocket side says GOODBYE while ingestion drains.
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                stop.cancel();
            }
        });
        let (served, ()) = tokio::join!(server.run(stop.clone().cancelled_owned(), grace), async {
            stop.cancelled().await;
            if tokio::time::timeout(grace, ingestion.stop()).await.is_err() {
                tracing::warn!("ingestion still stopping after the shutdown grace period");
            }
        });
        served?;
        tracing::info!("stopped");
        Ok(())
    });
    // Tasks still running past the grace period (connections that never closed, blocking I/O) must not
    // hold the process: the runtime gives them a moment, then the process exits regardless.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Writes the bound addresses to `path` as one JSON object, atomically: to `PATH.tmp`, then renamed, so
/// that whoever polls for `path` never reads half of it.
fn write_ready_file(path: &Path, http: SocketAddr, ingestion: &Ingestion) -> anyhow::Result<()> {
    let mut ready = serde_json::Map::new();
    ready.insert("http".into(), http.to_string().into());
    if let Some(jsonrpc) = ingestion.jsonrpc() {
        ready.insert("jsonrpc".into(), jsonrpc.local_addr().to_string().into());
    }
    if let Some(zmq) = ingestion.zmq() {
        ready.insert("zmq".into(), zmq.endpoint().into());
    }
    ready.insert("pid".into(), std::process::id().into());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{}\n", Value::Object(ready)))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Raises the open-file limit to the hard limit and says so, warning when it is too low for
/// `max_connections`.
fn raise_open_files_limit(max_connections: usize) {
    match fd_limit::raise_to_hard_limit() {
        Ok(limit) => {
            tracing::info!(
                "open-file limit {} (was {}, hard limit {})",
                limit.after,
                limit.before,
                limit.hard
            );
            let needed = u64::try_from(max_connections)
                .unwrap_or(u64::MAX)
                .saturating_add(RESERVED_FILES);
            if limit.after < needed {
                tracing::warn!(
                    "max_connections is {max_connections} but only {} files may be open: clients \
                     may be refused before max_connections; raise the hard limit (ulimit -Hn) or \
                     lower max_connections",
                    limit.after
                );
            }
        }
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}

fn ticket(args: &TicketArgs) -> anyhow::Result<String> {
    let config = Config::load(&args.config)?;
    let secret = config
        .security
        .resolve_secret()?
        .context("the configuration has no [security] secret to sign tickets with")?;
    let ttl = Duration::from_secs(args.ttl);
    Ok(TicketKey::new(secret).mint(&args.authid, &args.roles, ttl)?)
}

/// Parses `--NAME` as JSON.
fn json_arg(name: &str, text: Option<&str>) -> anyhow::Result<Option<Value>> {
    text.map(|t| serde_json::from_str(t).with_context(|| format!("--{name} is not valid JSON")))
        .transpose()
}

fn emit(args: EmitArgs) -> anyhow::Result<Receipt> {
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

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

//! The `switchboard` command: runs the gateway and checks configuration files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rand::distr::{Alphanumeric, SampleString};
use switchboard_config::Config;
use switchboard_gateway::router::Router;
use switchboard_gateway::transport::http::Server;

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
    },
    /// Validate a configuration file; exits non-zero with FILE:LINE and the reason on any error.
    CheckConfig {
        /// Configuration file to check.
        file: PathBuf,
    },
}

/// How long shutdown waits for sessions to say goodbye before the process exits.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

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
        Command::Gateway { config } => {
            init_logging();
            match run_gateway(config) {
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
        .init();
}

fn run_gateway(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::load_default_with_env()?,
    };
    if config.security.resolve_secret()?.is_none() {
        // Emitters need the secret to sign; without one configured, make one for this run and show it.
        let secret = Alphanumeric.sample_string(&mut rand::rng(), 32);
        eprintln!("switchboard: no [security] secret configured; this run's secret is: {secret}");
        config.security.secret = Some(secret);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let router = Arc::new(Router::new(&config));
        let server = Server::bind(config.gateway.listen, Arc::clone(&router))
            .await
            .with_context(|| format!("cannot listen on {}", config.gateway.listen))?;
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
        server.run(shutdown_signal(), SHUTDOWN_DRAIN).await?;
        tracing::info!("stopped");
        Ok(())
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

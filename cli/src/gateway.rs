//! `switchboard gateway`: loads the configuration, (with `[cluster]`) joins the cluster and catches up
//! with its event log, binds the HTTP front and ingestion, writes the ready file, and serves until a
//! signal stops it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use switchboard_config::{ClusterConfig, Config};
use switchboard_gateway::cluster::Cluster;
use switchboard_gateway::fd_limit;
use switchboard_gateway::ingest::Ingestion;
use switchboard_gateway::router::Router;
use switchboard_gateway::transport::accept::ConnectionLimits;
use switchboard_gateway::transport::http::Server;
use tokio_util::sync::CancellationToken;

/// `switchboard gateway`: where the configuration comes from, and what to override in it.
#[derive(clap::Args)]
pub(crate) struct GatewayArgs {
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
}

/// File descriptors the gateway needs besides its connections (listeners, ingestion, logs, runtime).
const RESERVED_FILES: u64 = 64;

/// Runs the gateway until SIGINT or SIGTERM, then shuts it down within `[gateway] shutdown_grace_ms`.
pub(crate) fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let GatewayArgs {
        config: config_path,
        listen,
        ready_file,
    } = args;
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
        // One signal stops everything: the WebSocket side says GOODBYE while ingestion drains.
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                stop.cancel();
            }
        });
        let router = Arc::new(Router::new(&config));
        let cluster = match &config.cluster {
            None => None,
            Some(cluster) => match join_cluster(cluster, &router, &stop).await? {
                Some(cluster) => Some(cluster),
                None => return Ok(()),
            },
        };
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
        let (served, ()) = tokio::join!(server.run(stop.clone().cancelled_owned(), grace), async {
            stop.cancelled().await;
            if tokio::time::timeout(grace, ingestion.stop()).await.is_err() {
                tracing::warn!("ingestion still stopping after the shutdown grace period");
            }
        });
        if let Some(cluster) = cluster {
            cluster.stop().await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    });
    // Tasks still running past the grace period (connections that never closed, blocking I/O) must not
    // hold the process: the runtime gives them a moment, then the process exits regardless.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Joins the cluster of `[cluster]` and waits until this node has rebuilt history from the event log,
/// before anything accepts sessions or events. None when stopped by a signal meanwhile; Err when the
/// node's name is taken by a live node.
async fn join_cluster(
    config: &ClusterConfig,
    router: &Arc<Router>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Cluster>> {
    tracing::info!(
        node = %config.node,
        stream = %config.stream,
        "joining the cluster: sessions and events are accepted once this node has caught up with the event log"
    );
    let mut cluster = Cluster::start(config, Arc::clone(router));
    tokio::select! {
        caught_up = cluster.caught_up() => {
            caught_up.context("cannot join the cluster")?;
            Ok(Some(cluster))
        }
        _ = stop.cancelled() => {
            cluster.stop().await;
            tracing::info!("stopped before joining the cluster");
            Ok(None)
        }
    }
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

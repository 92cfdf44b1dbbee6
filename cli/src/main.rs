//! The `switchboard` command: runs the gateway, emits events to one, mints connection tickets, checks
//! configuration files, and writes a starting configuration and page (`init`).

mod emit;
mod gateway;
mod init;
mod ticket;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use switchboard_config::Config;

/// Switchboard: a real-time event gateway (WAMP v2 over WebSocket).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each but `check-config` lives in the module of its name.
#[derive(Subcommand)]
enum Command {
    /// Run the gateway (with the embedded default configuration when no file is given).
    Gateway(gateway::GatewayArgs),
    /// Emit one event (or model change) to a gateway, over the transport of `[emitter].transport`.
    Emit(emit::EmitArgs),
    /// Mint a connection ticket (printed on the last line of stdout) for WAMP ticket authentication.
    Ticket(ticket::TicketArgs),
    /// Write a starting switchboard.toml (fresh secret) and index.html into DIR, and print what to run next.
    Init(init::InitArgs),
    /// Validate a configuration file; exits non-zero with FILE:LINE and the reason on any error.
    CheckConfig {
        /// Configuration file to check.
        file: PathBuf,
    },
}

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
        Command::Emit(args) => match emit::emit(args) {
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
        Command::Ticket(args) => match ticket::ticket(&args) {
            Ok(ticket) => {
                println!("{ticket}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard ticket: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Init(args) => match init::init(&args) {
            Ok(written) => {
                print!("{}", init::next_steps(&written));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard init: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Gateway(args) => {
            init_logging();
            match gateway::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchboard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only on a terminal.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

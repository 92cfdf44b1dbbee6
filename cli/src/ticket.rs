//! `switchboard ticket`: mints a connection ticket for WAMP ticket authentication.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use switchboard_config::Config;
use switchboard_wire::TicketKey;

/// `switchboard ticket`: signs with the configuration's `[security]` secret.
#[derive(clap::Args)]
pub(crate) struct TicketArgs {
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

/// Mints the ticket, signed with the configuration's `[security]` secret.
pub(crate) fn ticket(args: &TicketArgs) -> anyhow::Result<String> {
    let config = Config::load(&args.config)?;
    let secret = config
        .security
        .resolve_secret()?
        .context("the configuration has no [security] secret to sign tickets with")?;
    let ttl = Duration::from_secs(args.ttl);
    Ok(TicketKey::new(secret).mint(&args.authid, &args.roles, ttl)?)
}

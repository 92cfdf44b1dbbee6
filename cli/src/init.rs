//! `switchboard init [DIR]`: a starting point for a web app. Writes a commented `switchboard.toml` (a fresh
//! random secret, JSON-RPC and ZeroMQ ingestion, history for `models.`, realm `realm1` with a read-only
//! anonymous role and a `member` role) and `index.html` (a page that follows a model live), then prints
//! the commands to try them. Never overwrites either file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

/// `switchboard init`: where to write, and the gateway's address.
#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// Directory to write switchboard.toml and index.html into (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The gateway's HTTP address, written as `[gateway] listen` and used by index.html.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// The config file's name in DIR.
const CONFIG_FILE: &str = "switchboard.toml";
/// The example page's name in DIR.
const PAGE_FILE: &str = "index.html";
/// The model the page follows and the printed emit command changes (topic `models.demo.note`).
const DEMO_MODEL: &str = "demo.note";

/// What `init` wrote, for the caller to print.
pub(crate) struct Written {
    /// The config file.
    pub(crate) config: PathBuf,
    /// The example page.
    pub(crate) page: PathBuf,
}

/// Writes both files (refusing if either exists) and returns their paths.
pub(crate) fn init(args: &InitArgs) -> anyhow::Result<Written> {
    let config = args.dir.join(CONFIG_FILE);
    let page = args.dir.join(PAGE_FILE);
    // Check both before writing either, so that a refusal leaves the directory as it was.
    for file in [&config, &page] {
        if file.symlink_metadata().is_ok() {
            anyhow::bail!(
                "{} already exists; not overwriting it (move it away or pick another directory)",
                file.display()
            );
        }
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    let secret = random_secret();
    write_new(&config, &config_text(args.listen, &secret), 0o600)?;
    write_new(&page, &page_text(args.listen), 0o644)?;
    Ok(Written { config, page })
}

/// The lines `init` prints after writing: what it wrote, then the next three commands.
pub(crate) fn next_steps(written: &Written) -> String {
    let config = shell_quote(&written.config.display().to_string());
    let page = written.page.display().to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Wrote {} (with a fresh secret: keep it private; mode 0600) and {page}.",
        written.config.display()
    );
    let _ = writeln!(out, "\nNext:");
    let _ = writeln!(out, "  1. Run the gateway:");
    let _ = writeln!(out, "       switchboard gateway --config {config}");
    let _ = writeln!(
        out,
        "  2. Open the page (it connects to the gateway and lists the notes of model {DEMO_MODEL}):"
    );
    let _ = writeln!(out, "       open {page} in a browser");
    let _ = writeln!(
        out,
        "  3. In another terminal, emit a note; the page shows it at once:"
    );
    let _ = writeln!(
        out,
        "       switchboard emit --config {config} --model {DEMO_MODEL} --action created --pk 1 --data '{{\"text\": \"hello\"}}'"
    );
    out
}

/// 32 random bytes, hex-encoded.
fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Creates `path` (failing if it exists, even if created meanwhile) with `mode` and writes `text`.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; not overwriting it (move it away or pick another directory)",
                path.display()
            )
        } else {
            anyhow::Error::new(error).context(format!("cannot create {}", path.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The address a browser on this machine reaches `listen` at (an unspecified IP becomes loopback).
fn browser_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// Quotes `text` for a POSIX shell when it holds anything but plain path characters.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The commented config: `listen` and `secret` filled in, the rest the defaults `init` stands for.
fn config_text(listen: SocketAddr, secret: &str) -> String {
    CONFIG_TEMPLATE
        .replace("{listen}", &listen.to_string())
        .replace("{secret}", secret)
}

/// The example page, talking to the gateway at `listen`.
fn page_text(listen: SocketAddr) -> String {
    PAGE_TEMPLATE
        .replace("{addr}", &browser_addr(listen).to_string())
        .replace("{model}", DEMO_MODEL)
}

const CONFIG_TEMPLATE: &str = r#"# switchboard.toml, written by `switchboard init`: the configuration shared by the Switchboard gateway
# and every emitter (`switchboard emit`, the web app's emitter). Check it with
#   switchboard check-config switchboard.toml
# Every key, with what it does: shared-config/switchboard.example.toml in Switchboard's repository.
# Unknown keys are errors. Any key can be overridden from the environment, e.g.
#   SWITCHBOARD__GATEWAY__LISTEN=0.0.0.0:8080

[gateway]
# Address of the HTTP listener serving /ws (WAMP over WebSocket), /healthz and /switchboard.js.
listen = "{listen}"

[security]
# HMAC key for ingestion signatures and tickets, shared by the gateway and the web app's emitters:
# 32 random bytes made by `switchboard init`. Keep this file private (it was written with mode 0600),
# or move the secret to a file and point `secret_file` at it instead.
secret = "{secret}"
# Oldest accepted signature timestamp, in seconds from now.
max_skew_s = 300

# Ingestion: how the web app publishes into the gateway, signed with the secret above.
[ingest.jsonrpc]
# Address of the JSON-RPC 2.0 HTTP listener.
listen = "127.0.0.1:8081"

[ingest.zmq]
# Endpoint of the gateway's ZeroMQ PULL socket.
endpoint = "tcp://127.0.0.1:5560"

[emitter]
# The transport emitters use to reach the gateway: "jsonrpc", "zmq" or "amqp".
transport = "jsonrpc"

[[realms]]
name = "realm1"
# Role of sessions that do not authenticate (browsers without a ticket).
anonymous_role = "anonymous"

# Anonymous sessions only read: subscribe to and call anything, publish and register nothing. Events come
# from the web app (signed ingestion), so a browser cannot forge them.
[[realms.roles]]
name = "anonymous"
permissions = [
  { uri = "", match = "prefix", allow = { subscribe = true, call = true } },
]

# Signed-in users: the web app mints a ticket (`switchboard ticket --config switchboard.toml --authid alice
# --role member --ttl 60`, or its emitter's ticket()) and the page connects with it. They may also publish
# and register under `app.`, and follow the models.
[[realms.roles]]
name = "member"
permissions = [
  { uri = "app.", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } },
  { uri = "models.", match = "prefix", allow = { subscribe = true } },
]

# History: the newest events of every model topic, so that a page that reconnects recovers what it
# missed (the js-client's live collections do it by themselves).
[[realms.history]]
uri = "models."
match = "prefix"
limit = 1000
ttl_s = 3600
"#;

const PAGE_TEMPLATE: &str = r#"<!doctype html>
<!-- Written by `switchboard init`: follows the model {model} (topic models.{model}) live. Open it from
     disk or serve it from anywhere: the gateway serves switchboard.js to every origin. -->
<meta charset="utf-8">
<title>Switchboard: {model}</title>
<p>Gateway: <span id="state">loading</span></p>
<ul id="notes"></ul>
<script type="module">
  import { connect } from 'http://{addr}/switchboard.js';

  const client = await connect({ url: 'ws://{addr}/ws', realm: 'realm1' });
  const state = document.getElementById('state');
  client.on('state', (s) => { state.textContent = s; });
  const notes = await client.live('{model}');
  const render = () => {
    document.getElementById('notes').replaceChildren(...[...notes.items()].map((row) => {
      const li = document.createElement('li');
      li.dataset.pk = row.pk;
      li.textContent = `${row.pk}: ${row.text ?? JSON.stringify(row)}`;
      return li;
    }));
  };
  notes.on('change', render);
  notes.on('reset', render);
  render();
  state.textContent = client.state;
</script>
"#;

//! `switchboard init` as a user runs it: the files it writes, what it refuses, and the three commands it
//! prints, run as printed (through `sh`, with the binary on PATH) against the gateway they start.

mod ingest_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ingest_support::Subscriber;
use serde_json::json;
use support::{port_of, wait_ready, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A fresh temp directory (removed when dropped) that does not exist yet.
fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("switchboard-init-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("switchboard runs")
}

fn init(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["init", dir.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    run(&args)
}

/// The printed command line that starts with `prefix` (trimmed), or a panic showing stdout.
fn printed(stdout: &str, prefix: &str) -> String {
    stdout
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
        .to_string()
}

fn secret_of(config: &Path) -> String {
    let text = std::fs::read_to_string(config).expect("config readable");
    let line = text
        .lines()
        .find(|line| line.starts_with("secret = "))
        .expect("a secret line");
    line.trim_start_matches("secret = ")
        .trim_matches('"')
        .to_string()
}

/// `sh -c "exec LINE"` with the tested binary first on PATH, so the printed `switchboard ...` is what runs.
fn shell(line: &str) -> Command {
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("exec {line}"))
        .env("PATH", path);
    command
}

#[test]
fn init_writes_a_valid_config_and_a_page_and_never_overwrites() {
    let base = temp_dir("files");
    let dir = base.0.join("new").join("app");
    let output = init(&dir, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "init fails: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = dir.join("switchboard.toml");
    let page = dir.join("index.html");
    assert!(config.is_file() && page.is_file(), "{stdout}");

    // The three next commands, naming the files written.
    let config_shown = config.display().to_string();
    assert_eq!(
        printed(&stdout, "switchboard gateway "),
        format!("switchboard gateway --config {config_shown}")
    );
    assert!(printed(&stdout, "switchboard emit ")
        .starts_with(&format!("switchboard emit --config {config_shown} ")));
    assert_eq!(
        printed(&stdout, "open "),
        format!("open {} in a browser", page.display())
    );

    // The config holds the secret: only its owner reads it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config mode {mode:o}");

    let check = run(&["check-config", &config_shown]);
    assert!(
        check.status.success(),
        "check-config: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The page talks to the default listen address.
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        html.contains("http://127.0.0.1:8080/switchboard.js"),
        "{html}"
    );
    assert!(html.contains("ws://127.0.0.1:8080/ws"), "{html}");

    // Every init makes its own secret: 32 random bytes, hex.
    let secret = secret_of(&config);
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret}");
    let other = base.0.join("other");
    assert!(init(&other, &[]).status.success());
    assert_ne!(secret, secret_of(&other.join("switchboard.toml")));

    // A second init into the same directory refuses, naming the file, and leaves it as it was.
    let before = std::fs::read_to_string(&config).expect("config");
    let again = init(&dir, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(!again.status.success(), "a second init must fail");
    assert!(stderr.contains(&config_shown), "names the file: {stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);

    // An index.html alone is refused too, and then no config is written either.
    std::fs::remove_file(other.join("switchboard.toml")).expect("removed");
    let again = init(&other, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(!again.status.success(), "init over an index.html must fail");
    assert!(
        stderr.contains(&other.join("index.html").display().to_string()),
        "names the file: {stderr}"
    );
    assert!(!other.join("switchboard.toml").exists());
}

#[test]
fn listen_sets_the_gateway_address_and_the_page_s() {
    let base = temp_dir("listen");
    let output = init(&base.0, &["--listen", "0.0.0.0:9123"]);
    assert!(output.status.success());
    let config = std::fs::read_to_string(base.0.join("switchboard.toml")).expect("config");
    assert!(config.contains("listen = \"0.0.0.0:9123\""), "{config}");
    // A browser reaches an unspecified address on loopback.
    let html = std::fs::read_to_string(base.0.join("index.html")).expect("page");
    assert!(
        html.contains("http://127.0.0.1:9123/switchboard.js"),
        "{html}"
    );
    assert!(html.contains("ws://127.0.0.1:9123/ws"), "{html}");
}

#[tokio::test]
async fn the_printed_commands_deliver_an_event_to_an_anonymous_subscriber() {
    let base = temp_dir("e2e");
    let output = init(&base.0, &[]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();

    // The printed gateway command, on ports the OS chooses (the defaults may be taken here): the HTTP
    // listener by --listen, the ingestion listeners through the environment.
    let ready_file: PathBuf = base.0.join("ready.json");
    let log = base.0.join("gateway.log");
    let gateway_line = printed(&stdout, "switchboard gateway ");
    let mut gateway = shell(&format!(
        "{gateway_line} --listen 127.0.0.1:0 --ready-file {}",
        ready_file.display()
    ))
    .env("SWITCHBOARD__INGEST__JSONRPC__LISTEN", "127.0.0.1:0")
    .env("SWITCHBOARD__INGEST__ZMQ__ENDPOINT", "tcp://127.0.0.1:0")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log"))
    .spawn()
    .expect("gateway starts");
    let ready = wait_ready(&mut gateway, &ready_file, &log);
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _gateway = Kill(gateway);
    let port = port_of(ready["http"].as_str().expect("http"));
    let url = format!("ws://127.0.0.1:{port}/ws");

    let mut subscriber = Subscriber::join(&url).await;
    subscriber.subscribe("models.demo.note").await;

    // Anonymous sessions only read: a publish is refused.
    subscriber
        .client
        .send(json!([16, 99, {"acknowledge": true}, "app.hello", ["hi"]]))
        .await;
    let refused = subscriber
        .client
        .recv()
        .await
        .expect("an answer to PUBLISH");
    assert_eq!(refused[0], 8, "expected ERROR, got {refused}");
    assert_eq!(refused[4], "wamp.error.not_authorized", "{refused}");

    // A member (a ticket minted with the config's secret) may publish under `app.`.
    let config = base.0.join("switchboard.toml");
    let minted = run(&[
        "ticket",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--authid",
        "alice",
        "--role",
        "member",
        "--ttl",
        "60",
    ]);
    assert!(minted.status.success(), "{minted:?}");
    let ticket = String::from_utf8_lossy(&minted.stdout)
        .lines()
        .last()
        .expect("a ticket line")
        .to_string();
    let mut member = support::RawClient::connect(&url, "wamp.2.json").await;
    member
        .send(json!([1, "realm1", {"authid": "alice", "authmethods": ["ticket"], "roles": {"publisher": {}}}]))
        .await;
    let challenge = member.recv().await.expect("CHALLENGE");
    assert_eq!(challenge[0], 4, "expected CHALLENGE, got {challenge}");
    member.send(json!([5, ticket, {}])).await;
    let welcome = member.recv().await.expect("WELCOME");
    assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
    assert_eq!(welcome[2]["authrole"], "member", "{welcome}");
    member
        .send(json!([16, 1, {"acknowledge": true}, "app.hello", ["hi"]]))
        .await;
    let published = member.recv().await.expect("PUBLISHED");
    assert_eq!(published[0], 17, "expected PUBLISHED, got {published}");

    // The printed emit command, reaching the gateway's JSON-RPC port through the environment.
    let emit_line = printed(&stdout, "switchboard emit ");
    let emitted = shell(&emit_line)
        .env(
            "SWITCHBOARD__INGEST__JSONRPC__LISTEN",
            ready["jsonrpc"].as_str().expect("jsonrpc"),
        )
        .output()
        .expect("emit runs");
    assert!(
        emitted.status.success(),
        "emit: {}\n{}",
        String::from_utf8_lossy(&emitted.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let event = subscriber.event().await;
    let kwargs = &event[5];
    assert_eq!(kwargs["action"], "created", "{event}");
    assert_eq!(kwargs["model"], "demo.note", "{event}");
    assert_eq!(kwargs["pk"], 1, "{event}");
    assert_eq!(kwargs["data"]["text"], "hello", "{event}");
}

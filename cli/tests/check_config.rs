//! `switchboard check-config` as a user runs it: exit status and the FILE:LINE message.

use std::process::Command;

fn check(name: &str, text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("switchboard-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, text).expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("switchboard runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), stderr)
}

#[test]
fn a_misspelled_key_is_reported_with_its_line() {
    let (ok, stderr) = check(
        "misspelled",
        "[gateway]\nlisten = \"127.0.0.1:8080\"\nmax_mesage_bytes = 4096\n",
    );
    assert!(!ok, "check-config must fail");
    assert!(stderr.contains("switchboard.toml:3:"), "{stderr}");
    assert!(stderr.contains("max_mesage_bytes"), "{stderr}");
    assert!(
        stderr.contains("max_message_bytes"),
        "names the known key: {stderr}"
    );
}

#[test]
fn a_bad_uri_pattern_and_a_bad_address_are_reported_with_their_lines() {
    let (ok, stderr) = check(
        "pattern",
        "[[realms]]\nname = \"r\"\n[[realms.roles]]\nname = \"a\"\n\
         permissions = [{ uri = \"com.my app\", match = \"exact\" }]\n",
    );
    assert!(!ok);
    assert!(stderr.contains("switchboard.toml:5:"), "{stderr}");
    let (ok, stderr) = check("address", "[gateway]\nlisten = \"127.0.0.1:99999\"\n");
    assert!(!ok);
    assert!(stderr.contains("switchboard.toml:2:"), "{stderr}");
}

#[test]
fn the_example_file_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared-config/switchboard.example.toml"
    );
    let text = std::fs::read_to_string(example).expect("example config");
    let (ok, stderr) = check("example", &text);
    assert!(ok, "{stderr}");
}

#[test]
fn bad_cluster_keys_ipc_and_amqps_are_refused_with_their_lines() {
    let (ok, stderr) = check(
        "cluster",
        "[gateway]\nlisten = \"127.0.0.1:8080\"\n\n[cluster]\namqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nnode = \"n1\"\nmax_age_s = 0\n",
    );
    assert!(!ok, "check-config must fail");
    assert!(
        stderr.contains("switchboard.toml:7: cluster.max_age_s: must be between 60"),
        "{stderr}"
    );
    let (ok, stderr) = check(
        "cluster-ok",
        "[cluster]\namqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nnode = \"n1\"\n",
    );
    assert!(
        ok,
        "a cluster section with its required keys is valid: {stderr}"
    );
    let (ok, stderr) = check(
        "ipc",
        "[ingest.zmq]\nendpoint = \"ipc:///tmp/switchboard.sock\"\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains("switchboard.toml:2: ingest.zmq.endpoint: ")
            && stderr.contains("ipc:// is not supported"),
        "{stderr}"
    );
    let (ok, stderr) = check(
        "amqps",
        "[ingest.amqp]\nurl = \"amqps://user:hunter2@rabbit.example/%2f\"\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "switchboard.toml:2: ingest.amqp.url: amqps:// (AMQP over TLS) is not supported"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password is not echoed: {stderr}"
    );
}

#[test]
fn max_body_bytes_is_checked() {
    let (ok, stderr) = check(
        "body",
        "[ingest.jsonrpc]\nlisten = \"127.0.0.1:8081\"\nmax_body_bytes = 512\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "switchboard.toml:3: ingest.jsonrpc.max_body_bytes: must be between 1024 and"
        ),
        "{stderr}"
    );
    let (ok, stderr) = check(
        "body-ok",
        "[ingest.jsonrpc]\nlisten = \"127.0.0.1:8081\"\nmax_body_bytes = 65536\n",
    );
    assert!(ok, "{stderr}");
}

#[test]
fn the_gateway_refuses_to_start_with_a_bad_cluster_node_name() {
    let dir = std::env::temp_dir().join(format!("switchboard-check-{}-start", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("switchboard.toml");
    std::fs::write(
        &file,
        "[gateway]\nlisten = \"127.0.0.1:0\"\n[cluster]\namqp_url = \"amqp://127.0.0.1/%2f\"\nnode = \"a b\"\n",
    )
    .expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("gateway")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("switchboard runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the gateway must not start: {stderr}"
    );
    assert!(
        stderr.contains("switchboard.toml:5: cluster.node: node name \"a b\" holds ' '"),
        "{stderr}"
    );
}

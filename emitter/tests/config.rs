//! `Emitter::from_config` and the builder refuse incomplete setups with errors that say what is missing.

use std::path::PathBuf;

use switchboard_emitter::{BlockingEmitter, EmitError, Emitter};

fn config_file(name: &str, text: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-emitter-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

#[tokio::test]
async fn a_config_without_secret_or_ingest_section_is_refused() {
    let no_secret = config_file(
        "no-secret.toml",
        "[ingest.jsonrpc]\nlisten = \"127.0.0.1:1\"\n",
    );
    let error = Emitter::from_config(&no_secret).expect_err("no secret");
    assert!(matches!(error, EmitError::NoSecret), "{error}");

    let no_section = config_file("no-section.toml", "[security]\nsecret = \"s\"\n");
    let error = Emitter::from_config(&no_section).expect_err("no [ingest.jsonrpc]");
    assert!(error.to_string().contains("[ingest.jsonrpc]"), "{error}");

    let typo = config_file("typo.toml", "[emiter]\ntransport = \"jsonrpc\"\n");
    let error = Emitter::from_config(&typo).expect_err("unknown section");
    assert!(error.to_string().contains("typo.toml"), "{error}");

    let ok = config_file(
        "ok.toml",
        "[security]\nsecret = \"s\"\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:1\"\n",
    );
    let emitter = Emitter::from_config(&ok).expect("complete config");
    assert_eq!(emitter.model_prefix(), "models.");
    assert_eq!(emitter.buffered(), 0);
}

#[test]
fn the_async_emitter_needs_a_runtime_and_the_blocking_one_brings_its_own() {
    let builder = Emitter::builder().jsonrpc("http://127.0.0.1:1").secret("s");
    assert!(matches!(builder.clone().build(), Err(EmitError::NoRuntime)));
    let blocking = BlockingEmitter::new(builder.timeout(std::time::Duration::from_millis(200)))
        .expect("own runtime");
    let error = blocking
        .emit(switchboard_emitter::Event::new("a.b"))
        .expect_err("nothing listens on port 1");
    assert!(matches!(error, EmitError::Timeout { .. }), "{error}");
}

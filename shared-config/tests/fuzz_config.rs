//! Property tests (stable-Rust fuzzing) of the config loader: arbitrary text and arbitrary TOML-ish
//! documents built from the real section and key names never panic, and every error names the file and a
//! line of it; arbitrary `SWITCHBOARD__...` overrides never panic and errors name the variable.
//!
//! CI runs a few hundred cases per property; `PROPTEST_CASES` asks for more, e.g.
//! `PROPTEST_CASES=100000 cargo test --release -p switchboard-config --test fuzz_config`.

use proptest::collection::vec;
use proptest::prelude::*;
use switchboard_config::{Config, ConfigError};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 500;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

const ORIGIN: &str = "fuzz.toml";

const SECTIONS: &[&str] = &[
    "[gateway]",
    "[security]",
    "[ingest]",
    "[ingest.jsonrpc]",
    "[ingest.zmq]",
    "[ingest.amqp]",
    "[emitter]",
    "[cluster]",
    "[[realms]]",
    "[[realms.roles]]",
    "[[realms.users]]",
    "[gatway]",
    "[[gateway]]",
    "[realms]",
    "[",
];

const KEYS: &[&str] = &[
    "listen",
    "max_message_bytes",
    "outbound_queue",
    "slow_consumer_ms",
    "hello_timeout_ms",
    "secret",
    "secret_file",
    "max_skew_s",
    "endpoint",
    "url",
    "amqp_url",
    "exchange",
    "queue",
    "transport",
    "name",
    "anonymous_role",
    "permissions",
    "uri",
    "match",
    "allow",
    "authid",
    "role",
    "salt",
    "iterations",
    "keylen",
    "jsonrpc",
    "lisen",
    "ingest.jsonrpc.listen",
    "\"quoted key\"",
];

const VALUES: &[&str] = &[
    "\"127.0.0.1:8080\"",
    "\"0.0.0.0:0\"",
    "\"localhost\"",
    "\"127.0.0.1:99999\"",
    "\"tcp://127.0.0.1:5555\"",
    "\"amqp://guest:guest@127.0.0.1:5672/%2f\"",
    "\"realm1\"",
    "\"anonymous\"",
    "\"\"",
    "\"com.my app\"",
    "\"com..x\"",
    "\"jsonrpc\"",
    "\"zmq\"",
    "\"http\"",
    "\"prefix\"",
    "\"wildcard\"",
    "0",
    "1",
    "-1",
    "1023",
    "1024",
    "18446744073709551616",
    "3.5",
    "true",
    "[]",
    "{}",
    "[{ uri = \"\", match = \"prefix\", allow = { subscribe = true } }]",
    "[{ uri = \"a\", allw = {} }]",
    "{ subscribe = true, publish = 1 }",
    "\"unterminated",
    "'''multi\nline'''",
    "1979-05-27T07:32:00Z",
];

/// One line of a TOML-ish document: a section header, a key = value pair, a blank line or junk.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(SECTIONS).prop_map(str::to_string),
        6 => (proptest::sample::select(KEYS), proptest::sample::select(VALUES))
            .prop_map(|(key, value)| format!("{key} = {value}")),
        1 => (proptest::sample::select(KEYS), "[ -~]{0,12}")
            .prop_map(|(key, value)| format!("{key} = {value}")),
        1 => Just(String::new()),
        1 => "[ -~]{0,20}",
    ]
}

/// Checks an error of `Config::from_toml_str(text, ORIGIN)`: it names the file and a line of `text`.
fn check_located(text: &str, error: &ConfigError) -> Result<(), TestCaseError> {
    let shown = error.to_string();
    prop_assert!(shown.starts_with(&format!("{ORIGIN}:")), "{shown}");
    match error {
        ConfigError::AtLine { file, line, .. } => {
            prop_assert_eq!(file, ORIGIN);
            let lines = text.lines().count().max(1);
            prop_assert!(
                (1..=lines).contains(line),
                "line {line} of {lines}: {shown}"
            );
        }
        other => prop_assert!(false, "error without a line: {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Any text at all: parsed or refused with the file and a line, never a panic.
    #[test]
    fn arbitrary_text_loads_or_names_file_and_line(text in "(?s).{0,300}") {
        if let Err(error) = Config::from_toml_str(&text, ORIGIN) {
            check_located(&text, &error)?;
        }
    }

    /// Documents made of the real section and key names with good, bad and broken values.
    #[test]
    fn toml_ish_documents_load_or_name_file_and_line(lines in vec(line(), 0..16)) {
        let text = lines.join("\n");
        if let Err(error) = Config::from_toml_str(&text, ORIGIN) {
            check_located(&text, &error)?;
        }
    }

    /// Arbitrary `SWITCHBOARD__` overrides on the embedded default: applied or refused naming the
    /// variable, and an applied config validates or names the key, never a panic.
    #[test]
    fn arbitrary_env_overrides_apply_or_name_the_variable(
        vars in vec(
            (
                vec(prop_oneof![proptest::sample::select(KEYS).prop_map(str::to_string),
                                Just("GATEWAY".to_string()), Just("INGEST".to_string()),
                                Just("REALMS".to_string()), "[A-Za-z_]{0,8}"], 1..4),
                prop_oneof![proptest::sample::select(VALUES).prop_map(str::to_string), ".{0,24}"],
            ),
            1..4,
        )
    ) {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(path, value)| (format!("SWITCHBOARD__{}", path.join("__")), value))
            .collect();
        let mut config = Config::embedded_default();
        match config.apply_env(vars.clone()) {
            Ok(()) => {
                if let Err(error) = config.validate() {
                    prop_assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
                }
            }
            Err(ConfigError::Env { var, reason }) => {
                prop_assert!(vars.iter().any(|(name, _)| *name == var), "{var}: {reason}");
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "not an env error: {other:?}"),
        }
    }
}

//! Keeps `docs/configuration.md` in step with the config types: every key the config accepts is
//! documented there, every documented key is accepted, and the defaults written for the plain sections
//! are the embedded default's.
//!
//! The page is read as headings naming a table path in backticks (`` ## `[gateway]` ``,
//! `` ### `realms.roles.permissions` ``), each followed by a table whose first column is a key in
//! backticks. The accepted keys are collected by serializing configs with every optional key and section
//! filled in: the structs are built field by field (no `..Default::default()`), so a field added to a
//! config type does not compile here until it is filled in, and then fails the test until it is documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use switchboard_config::{
    Allow, AmqpConfig, ClusterConfig, Config, EmitterConfig, EmitterTransport, GatewayConfig,
    HistoryConfig, IngestConfig, JsonRpcConfig, MatchPolicy, ModelViewConfig, Permission,
    RealmConfig, RoleConfig, SecurityConfig, UserConfig, ZmqConfig,
};

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// A config with every optional key and section present (not a valid one: `[cluster]` is refused by
/// validation, which this test does not run).
fn everything() -> Config {
    let GatewayConfig {
        listen,
        max_message_bytes,
        outbound_queue_bytes,
        outbound_queue,
        slow_consumer_ms,
        hello_timeout_ms,
        max_subscriptions,
        max_pattern_subscriptions,
        max_pending_requests,
        max_sessions_per_authid,
        max_uri_bytes,
        header_timeout_ms,
        max_connections,
        shutdown_grace_ms,
        history_max_bytes,
        longpoll_request_timeout_ms,
        longpoll_session_timeout_ms,
    } = GatewayConfig::default();
    Config {
        gateway: GatewayConfig {
            listen,
            max_message_bytes,
            outbound_queue_bytes,
            outbound_queue,
            slow_consumer_ms,
            hello_timeout_ms,
            max_subscriptions,
            max_pattern_subscriptions,
            max_pending_requests,
            max_sessions_per_authid,
            max_uri_bytes,
            header_timeout_ms,
            max_connections,
            shutdown_grace_ms,
            history_max_bytes,
            longpoll_request_timeout_ms,
            longpoll_session_timeout_ms,
        },
        security: SecurityConfig {
            secret: Some("s".into()),
            secret_file: Some("f".into()),
            max_skew_s: 300,
        },
        ingest: IngestConfig {
            jsonrpc: Some(JsonRpcConfig {
                listen,
                max_body_bytes: 1024,
                body_timeout_ms: 100,
            }),
            zmq: Some(ZmqConfig {
                endpoint: "tcp://127.0.0.1:5560".into(),
            }),
            amqp: Some(AmqpConfig {
                url: "amqp://x".into(),
                exchange: "e".into(),
                queue: "q".into(),
            }),
        },
        emitter: EmitterConfig {
            transport: EmitterTransport::Zmq,
        },
        realms: vec![RealmConfig {
            name: "realm1".into(),
            anonymous_role: Some("r".into()),
            roles: vec![RoleConfig {
                name: "r".into(),
                permissions: vec![Permission {
                    uri: "a".into(),
                    match_policy: MatchPolicy::Prefix,
                    allow: Allow {
                        subscribe: true,
                        publish: true,
                        call: true,
                        register: true,
                    },
                }],
            }],
            users: vec![UserConfig {
                authid: "u".into(),
                secret: "s".into(),
                role: "r".into(),
                salt: Some("salt".into()),
                iterations: Some(1),
                keylen: Some(32),
            }],
            history: vec![HistoryConfig {
                uri: "a".into(),
                match_policy: MatchPolicy::Exact,
                limit: 1,
                ttl_s: 1,
            }],
            models: vec![ModelViewConfig {
                name: "a.b".into(),
                max_rows: 1,
                max_bytes: 65536,
            }],
        }],
        cluster: Some(ClusterConfig {
            amqp_url: "amqp://x".into(),
        }),
    }
}

/// Every key path of `value` (tables and leaves; array elements share their array's path).
fn key_paths(prefix: &str, value: &toml::Value, into: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                into.insert(path.clone());
                key_paths(&path, inner, into);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                key_paths(prefix, item, into);
            }
        }
        _ => {}
    }
}

fn accepted_keys() -> BTreeSet<String> {
    let value = toml::Value::try_from(everything()).expect("the config serializes");
    let mut keys = BTreeSet::new();
    key_paths("", &value, &mut keys);
    keys
}

/// The first `...` span of `line`.
fn first_code_span(line: &str) -> Option<&str> {
    let start = line.find('`')? + 1;
    let len = line[start..].find('`')?;
    Some(&line[start..start + len])
}

/// The documented keys (`section.key` -> the row's default cell) and the section paths, from the page.
fn documented() -> (BTreeMap<String, String>, BTreeSet<String>) {
    let path = repo_file("docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("docs/configuration.md is readable");
    let mut keys = BTreeMap::new();
    let mut sections = BTreeSet::new();
    let mut section: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            section = first_code_span(line)
                .map(|span| span.trim_matches(|c| c == '[' || c == ']').to_string());
            if let Some(section) = &section {
                sections.insert(section.clone());
            }
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let section = section.as_ref().unwrap_or_else(|| {
            panic!(
                "docs/configuration.md:{}: a key row outside a section",
                number + 1
            )
        });
        let key = &row[..row.find('`').expect("closing backtick")];
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let default = cells.get(3).copied().unwrap_or_default().to_string();
        let previous = keys.insert(format!("{section}.{key}"), default);
        assert!(
            previous.is_none(),
            "docs/configuration.md:{}: `{section}.{key}` is documented twice",
            number + 1
        );
    }
    (keys, sections)
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let accepted = accepted_keys();
    let (keys, sections) = documented();
    let mut documented: BTreeSet<String> = keys.keys().cloned().collect();
    // A section heading documents its path and the tables it sits in (`[ingest.zmq]`: `ingest`).
    for section in &sections {
        let mut path = String::new();
        for part in section.split('.') {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
            documented.insert(path.clone());
        }
    }
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty(),
        "keys the config accepts but docs/configuration.md does not document: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md documents but the config does not accept: {unknown:?}"
    );
}

#[test]
fn documented_defaults_of_the_plain_sections_are_the_embedded_defaults() {
    let mut config = Config::embedded_default();
    // AMQP is off in the embedded default; its documented defaults are those of a section left empty.
    config.ingest.amqp = Some(AmqpConfig::default());
    let value = toml::Value::try_from(&config).expect("the config serializes");
    let (keys, _) = documented();
    let mut checked = 0;
    for (path, default) in &keys {
        if path.starts_with("realms") || path.starts_with("cluster") {
            continue; // array entries: their defaults are per entry, some keys are required
        }
        let Some(literal) = default
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue; // "absent" and the like
        };
        let written: toml::Value = toml::from_str::<toml::Table>(&format!("v = {literal}"))
            .unwrap_or_else(|error| panic!("{path}: default {literal} is not TOML: {error}"))["v"]
            .clone();
        let actual = path
            .split('.')
            .try_fold(&value, |value, key| value.get(key))
            .unwrap_or_else(|| panic!("{path} is not in the embedded default"));
        assert_eq!(&written, actual, "documented default of {path}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} defaults were checked");
}

#[test]
fn every_key_of_the_example_config_is_documented() {
    // The example config shows optional keys commented out (`# key = value`); they count too.
    let text = std::fs::read_to_string(repo_file("shared-config/switchboard.example.toml"))
        .expect("the example config is readable");
    let (keys, _) = documented();
    let mut section = String::new();
    let mut seen = 0;
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let path = format!("{section}.{key}");
        assert!(
            keys.contains_key(&path),
            "the example config has `{path}`, which docs/configuration.md does not document"
        );
        seen += 1;
    }
    assert!(seen >= 30, "only {seen} keys found in the example config");
}

//! The config Switchboard runs with when there is no file (DESIGN.md section 6): everything on 127.0.0.1,
//! realm `realm1` open to anonymous sessions (except publishing model events, which only the web app may), JSON-RPC and ZeroMQ ingestion on, AMQP off. It is also shipped
//! as the commented `switchboard.example.toml`, which a test keeps equal to it.

use crate::env::process_env_vars;
use crate::error::ConfigError;
use crate::load::EMBEDDED_ORIGIN;
use crate::{
    Allow, Config, EmitterConfig, GatewayConfig, HistoryConfig, IngestConfig, JsonRpcConfig,
    MatchPolicy, Permission, RealmConfig, RoleConfig, SecurityConfig, ZmqConfig,
};

/// Name of the realm of the embedded default.
pub const DEFAULT_REALM: &str = "realm1";

/// Name of the role anonymous sessions get in the embedded default.
pub const DEFAULT_ANONYMOUS_ROLE: &str = "anonymous";

impl Config {
    /// The config used when no file is given: a working local setup with no secret (the gateway generates
    /// and prints a random one at start).
    pub fn embedded_default() -> Config {
        let allow_everything = Permission {
            uri: String::new(),
            match_policy: MatchPolicy::Prefix,
            allow: Allow {
                subscribe: true,
                publish: true,
                call: true,
                register: true,
            },
        };
        // Model events come from the web app (signed ingestion): a browser must not be able to forge
        // them, so anonymous sessions may read `models.` but not publish there.
        let no_model_events = Permission {
            uri: "models.".to_string(),
            match_policy: MatchPolicy::Prefix,
            allow: Allow {
                publish: false,
                ..allow_everything.allow
            },
        };
        Config {
            gateway: GatewayConfig::default(),
            security: SecurityConfig::default(),
            ingest: IngestConfig {
                jsonrpc: Some(JsonRpcConfig::default()),
                zmq: Some(ZmqConfig::default()),
                amqp: None,
            },
            emitter: EmitterConfig::default(),
            realms: vec![RealmConfig {
                name: DEFAULT_REALM.to_string(),
                anonymous_role: Some(DEFAULT_ANONYMOUS_ROLE.to_string()),
                roles: vec![RoleConfig {
                    name: DEFAULT_ANONYMOUS_ROLE.to_string(),
                    permissions: vec![allow_everything, no_model_events],
                }],
                users: Vec::new(),
                // Model events keep their recent history, so that a page that reconnects recovers
                // what it missed.
                history: vec![HistoryConfig {
                    uri: "models.".to_string(),
                    match_policy: MatchPolicy::Prefix,
                    limit: HistoryConfig::DEFAULT_LIMIT,
                    ttl_s: HistoryConfig::DEFAULT_TTL_S,
                }],
                models: Vec::new(),
            }],
            cluster: None,
        }
    }

    /// The embedded default with `SWITCHBOARD__...` overrides from the process environment, validated:
    /// what `switchboard gateway` runs when started without a config file.
    pub fn load_default_with_env() -> Result<Config, ConfigError> {
        let mut config = Self::embedded_default();
        let overrides = config.apply_env_tracked(process_env_vars()?)?;
        config.validated(EMBEDDED_ORIGIN, None, &overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/switchboard.example.toml");

    #[test]
    fn embedded_default_is_valid() {
        assert!(Config::embedded_default().validate().is_ok());
    }

    #[test]
    fn load_default_with_env_gives_the_default_when_no_override_is_set() {
        let overridden = std::env::vars_os().any(|(name, _)| {
            name.to_str()
                .is_some_and(|name| name.to_ascii_uppercase().starts_with(crate::ENV_PREFIX))
        });
        if !overridden {
            let config = Config::load_default_with_env().expect("the default is valid");
            assert_eq!(config, Config::embedded_default());
        }
    }

    #[test]
    fn example_file_loads_to_the_embedded_default() {
        let text = include_str!("../switchboard.example.toml");
        let config = Config::from_toml_str(text, EXAMPLE_PATH).expect("the example file is valid");
        assert_eq!(config, Config::embedded_default());
    }

    #[test]
    fn every_commented_out_key_of_the_example_is_known() {
        // Uncomment `# key = ...` and `# [section]` lines; the result must parse (not validate: it sets
        // both `secret` and `secret_file` on purpose, to show both).
        let uncommented: String = include_str!("../switchboard.example.toml")
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest
                            .split_once(" = ")
                            .is_some_and(|(key, _)| is_bare_key(key)) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let config =
            crate::load::parse_strict(&uncommented, "uncommented example").expect("known keys");
        assert!(config.ingest.amqp.is_some());
        assert_eq!(config.realms[0].users.len(), 1);
    }

    fn is_bare_key(key: &str) -> bool {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    }

    #[test]
    fn embedded_default_survives_a_toml_round_trip() {
        let text = toml::to_string(&Config::embedded_default()).expect("serializes");
        let config = Config::from_toml_str(&text, "round-trip").expect("parses back");
        assert_eq!(config, Config::embedded_default());
    }
}

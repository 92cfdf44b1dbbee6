//! Environment overrides: `SWITCHBOARD__SECTION__KEY=value` replaces `[section] key`, so that containers
//! and CI can change a setting without editing the file.
//!
//! The config is serialized to a TOML table, the value is set at the path, and the table is deserialized
//! back with the same strict rules as the file: an unknown section or key is refused exactly as in the file.

use crate::error::{
    describe_unknown_key, unknown_key_name, with_hint, ConfigError, KeyPath, Segment,
};
use crate::Config;

/// Prefix of the variables that override config keys; other variables are ignored.
pub const ENV_PREFIX: &str = "SWITCHBOARD__";

/// Separator between the levels of the key path in a variable name.
const LEVEL_SEPARATOR: &str = "__";

/// An override that was applied, kept so that a later validation failure can name the variable.
#[derive(Debug, Clone)]
pub(crate) struct EnvOverride {
    pub(crate) var: String,
    pub(crate) path: KeyPath,
}

/// The process environment's `SWITCHBOARD__` variables; a non-UTF-8 value for one of them is an error
/// (other variables, whatever their encoding, are skipped).
pub(crate) fn process_env_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Ok(name) = name.into_string() else {
            continue;
        };
        if strip_env_prefix(&name).is_none() {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name, value)),
            Err(_) => {
                return Err(ConfigError::Env {
                    var: name,
                    reason: "the value is not valid UTF-8".to_string(),
                })
            }
        }
    }
    Ok(vars)
}

/// The part of `name` after `SWITCHBOARD__` (compared case-insensitively), or `None` for other variables.
fn strip_env_prefix(name: &str) -> Option<&str> {
    let prefix = name.get(..ENV_PREFIX.len())?;
    let rest = name.get(ENV_PREFIX.len()..)?;
    prefix.eq_ignore_ascii_case(ENV_PREFIX).then_some(rest)
}

impl Config {
    /// Applies `SWITCHBOARD__SECTION__KEY=value` overrides from `vars` (the process environment, or a list in
    /// tests); other variables are ignored. Names are case-insensitive; `__` separates levels
    /// (`SWITCHBOARD__INGEST__JSONRPC__LISTEN`). The value is read as a TOML value when it parses as one
    /// and fits the key (numbers, booleans, arrays, inline tables), else as a plain string.
    ///
    /// Entries of `[[realms]]` cannot be overridden one by one (the whole `SWITCHBOARD__REALMS` array can).
    /// On error nothing is changed. This does not validate: [`Config::load`] does that afterwards.
    pub fn apply_env<I>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        self.apply_env_tracked(vars).map(|_| ())
    }

    /// [`Config::apply_env`], returning what was overridden so that validation errors can name the variable.
    pub(crate) fn apply_env_tracked<I>(&mut self, vars: I) -> Result<Vec<EnvOverride>, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut relevant: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| strip_env_prefix(name).is_some())
            .collect();
        // The environment has no order; sorting makes the result the same on every start.
        relevant.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut updated = self.clone();
        let mut applied = Vec::with_capacity(relevant.len());
        for (var, value) in relevant {
            let keys = key_path_of(&var)?;
            updated = with_override(&updated, &var, &keys, &value)?;
            applied.push(EnvOverride {
                var,
                path: KeyPath(keys.into_iter().map(Segment::Key).collect()),
            });
        }
        *self = updated;
        Ok(applied)
    }
}

/// The lower-cased key path named by a `SWITCHBOARD__A__B` variable.
fn key_path_of(var: &str) -> Result<Vec<String>, ConfigError> {
    let rest = strip_env_prefix(var).unwrap_or_default();
    let keys: Vec<String> = rest
        .split(LEVEL_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect();
    if keys.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.to_string(),
            reason: "expected SWITCHBOARD__SECTION__KEY, with `__` between non-empty levels"
                .to_string(),
        });
    }
    Ok(keys)
}

/// `config` with `value` set at `keys`, checked by deserializing strictly.
fn with_override(
    config: &Config,
    var: &str,
    keys: &[String],
    value: &str,
) -> Result<Config, ConfigError> {
    let env_error = |reason: String| ConfigError::Env {
        var: var.to_string(),
        reason,
    };
    let mut table = toml::Table::try_from(config).map_err(|error| {
        env_error(format!(
            "cannot apply the override: the config does not serialize: {error}"
        ))
    })?;
    let as_string = toml::Value::String(value.to_string());
    let first_try = value
        .parse::<toml::Value>()
        .unwrap_or_else(|_| as_string.clone());
    let first_is_raw_string = first_try == as_string;
    set_at(&mut table, keys, first_try).map_err(env_error)?;
    let first_error = match table.clone().try_into::<Config>() {
        Ok(updated) => return Ok(updated),
        Err(error) => error,
    };
    // `123456` parses as an integer but may well be meant as a string (a secret, say): try that too.
    if !first_is_raw_string {
        set_at(&mut table, keys, as_string).map_err(env_error)?;
        if let Ok(updated) = table.try_into::<Config>() {
            return Ok(updated);
        }
    }
    Err(env_error(describe_env_error(first_error.message(), keys)))
}

/// Words a deserialization error for the key path set by a variable.
fn describe_env_error(message: &str, keys: &[String]) -> String {
    if let Some(unknown) = unknown_key_name(message) {
        // The unknown key is one of the variable's levels; the table holding it is the levels before.
        let depth = keys
            .iter()
            .position(|key| key == unknown)
            .unwrap_or(keys.len());
        let table = KeyPath(keys[..depth].iter().cloned().map(Segment::Key).collect());
        let is_section = depth + 1 < keys.len();
        if let Some(described) = describe_unknown_key(message, &table, is_section) {
            return described;
        }
    }
    format!("{}: {}", keys.join("."), with_hint(message))
}

/// Sets `value` at `keys` in `table`, creating missing tables on the way; refuses to go through arrays.
fn set_at(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = keys.split_last() else {
        return Err("the variable names no key".to_string());
    };
    let mut current = table;
    for (depth, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            toml::Value::Array(_) => return Err(array_override_refused(&keys[..=depth])),
            _ => {
                let here = keys[..=depth].join(".");
                let next = &keys[depth + 1];
                return Err(format!(
                    "`{here}` is a value, not a table, so it has no key `{next}`"
                ));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Why `[[array]]` entries cannot be overridden, and what to do instead.
fn array_override_refused(array_keys: &[String]) -> String {
    let here = array_keys.join(".");
    let whole_array_var =
        format!("{ENV_PREFIX}{}", array_keys.join(LEVEL_SEPARATOR)).to_ascii_uppercase();
    format!(
        "`{here}` is an array ([[{here}]]); its entries cannot be overridden from the environment; \
         edit the file, or replace the whole array with {whole_array_var}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn env_error(pairs: &[(&str, &str)]) -> String {
        let mut config = Config::embedded_default();
        match config.apply_env(vars(pairs)) {
            Ok(()) => panic!("expected an error, got {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn overrides_gateway_listen() {
        let mut config = Config::embedded_default();
        config
            .apply_env(vars(&[("SWITCHBOARD__GATEWAY__LISTEN", "0.0.0.0:9000")]))
            .expect("known key");
        assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn overrides_nested_ingest_jsonrpc_listen_case_insensitively() {
        let mut config = Config::embedded_default();
        config
            .apply_env(vars(&[(
                "switchboard__Ingest__JSONRPC__listen",
                "127.0.0.1:9181",
            )]))
            .expect("known key");
        let jsonrpc = config.ingest.jsonrpc.expect("jsonrpc stays enabled");
        assert_eq!(jsonrpc.listen.to_string(), "127.0.0.1:9181");
    }

    #[test]
    fn values_are_typed_when_they_parse_as_toml() {
        let mut config = Config::embedded_default();
        let pairs = [
            ("SWITCHBOARD__GATEWAY__MAX_MESSAGE_BYTES", "65536"),
            ("SWITCHBOARD__EMITTER__TRANSPORT", "zmq"),
            ("SWITCHBOARD__SECURITY__SECRET", "123456"),
        ];
        config.apply_env(vars(&pairs)).expect("known keys");
        assert_eq!(config.gateway.max_message_bytes, 65536);
        assert_eq!(config.emitter.transport, crate::EmitterTransport::Zmq);
        assert_eq!(config.security.secret.as_deref(), Some("123456"));
    }

    #[test]
    fn an_absent_optional_section_is_created() {
        let mut config = Config::embedded_default();
        config
            .apply_env(vars(&[("SWITCHBOARD__INGEST__AMQP__EXCHANGE", "events")]))
            .expect("known key");
        let amqp = config.ingest.amqp.expect("amqp enabled by the override");
        assert_eq!(amqp.exchange, "events");
        assert_eq!(amqp.queue, crate::AmqpConfig::default().queue);
    }

    #[test]
    fn unknown_key_is_rejected_naming_the_variable_and_alternatives() {
        let message = env_error(&[("SWITCHBOARD__GATEWAY__LISTN", "0.0.0.0:9000")]);
        assert!(
            message
                .starts_with("env SWITCHBOARD__GATEWAY__LISTN: unknown key `listn` in [gateway]"),
            "{message}"
        );
        assert!(message.contains("`listen`"), "{message}");
    }

    #[test]
    fn unknown_section_is_rejected_naming_the_variable() {
        let message = env_error(&[("SWITCHBOARD__GATWAY__LISTEN", "0.0.0.0:9000")]);
        assert!(
            message.starts_with("env SWITCHBOARD__GATWAY__LISTEN: unknown section [gatway]"),
            "{message}"
        );
    }

    #[test]
    fn bad_value_names_the_variable_and_key() {
        let message = env_error(&[("SWITCHBOARD__GATEWAY__LISTEN", "nowhere")]);
        assert!(
            message.starts_with("env SWITCHBOARD__GATEWAY__LISTEN: gateway.listen: "),
            "{message}"
        );
    }

    #[test]
    fn realm_entries_cannot_be_overridden_and_the_error_says_so() {
        let message = env_error(&[("SWITCHBOARD__REALMS__NAME", "realm2")]);
        assert!(
            message.contains("env SWITCHBOARD__REALMS__NAME: `realms` is an array"),
            "{message}"
        );
        assert!(
            message.contains("cannot be overridden from the environment"),
            "{message}"
        );
    }

    #[test]
    fn the_whole_realms_array_can_be_replaced() {
        let mut config = Config::embedded_default();
        let realms = r#"[{ name = "realm2", roles = [{ name = "r" }], anonymous_role = "r" }]"#;
        config
            .apply_env(vars(&[("SWITCHBOARD__REALMS", realms)]))
            .expect("valid realms");
        assert_eq!(config.realms.len(), 1);
        assert_eq!(config.realms[0].name, "realm2");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn malformed_names_are_rejected() {
        let message = env_error(&[("SWITCHBOARD__GATEWAY____LISTEN", "0.0.0.0:9000")]);
        assert!(
            message.starts_with("env SWITCHBOARD__GATEWAY____LISTEN: expected"),
            "{message}"
        );
    }

    #[test]
    fn other_variables_are_ignored() {
        let mut config = Config::embedded_default();
        let pairs = [
            ("PATH", "/usr/bin"),
            ("SWITCHBOARD_GATEWAY__LISTEN", "x"),
            ("GATEWAY__LISTEN", "y"),
        ];
        config.apply_env(vars(&pairs)).expect("nothing to apply");
        assert_eq!(config, Config::embedded_default());
    }

    #[test]
    fn a_failed_override_changes_nothing() {
        let mut config = Config::embedded_default();
        let pairs = [
            ("SWITCHBOARD__GATEWAY__LISTEN", "0.0.0.0:9000"),
            ("SWITCHBOARD__GATEWAY__ZZZ", "1"),
        ];
        assert!(config.apply_env(vars(&pairs)).is_err());
        assert_eq!(config, Config::embedded_default());
    }
}

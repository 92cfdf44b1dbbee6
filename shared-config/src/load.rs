//! Reading `switchboard.toml`: strict parsing with file:line errors, then environment overrides, then
//! validation, so that every way of starting Switchboard applies the same rules in the same order.

use std::path::Path;

use crate::env::{process_env_vars, EnvOverride};
use crate::error::{
    describe_unknown_key, line_of_offset, unknown_key_name, with_hint, ConfigError,
};
use crate::spans::SpannedDocument;
use crate::validate::Problem;
use crate::Config;

/// The origin named in errors about the embedded default config (which has no file).
pub(crate) const EMBEDDED_ORIGIN: &str = "embedded default";

impl Config {
    /// Loads the config file at `path` the way the gateway and emitters do: read, parse strictly (unknown keys
    /// are errors), apply `SWITCHBOARD__...` overrides from the process environment, validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, process_env_vars()?)
    }

    /// [`Config::load`] with the environment given explicitly, so that callers and tests can apply
    /// overrides without touching the process environment.
    pub fn load_with_env<I>(path: &Path, vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|io| ConfigError::Read {
            file: origin.clone(),
            io,
        })?;
        let mut config = parse_strict(&text, &origin)?;
        let overrides = config.apply_env_tracked(vars)?;
        config.validated(&origin, Some(&text), &overrides)
    }

    /// Parses and validates config text without looking at the environment; `origin` (usually the file
    /// name) prefixes the `origin:line:` of errors. For tests and for configs that do not come from a file.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        parse_strict(text, origin)?.validated(origin, Some(text), &[])
    }

    /// Runs [`Config::validate`] and words a failure for the operator: blamed on the environment variable
    /// that set the key, else on the key's line in `text`, else on the key path.
    pub(crate) fn validated(
        self,
        origin: &str,
        text: Option<&str>,
        overrides: &[EnvOverride],
    ) -> Result<Config, ConfigError> {
        match self.first_problem() {
            None => Ok(self),
            Some(problem) => Err(locate_problem(problem, origin, text, overrides)),
        }
    }
}

fn locate_problem(
    problem: Problem,
    origin: &str,
    text: Option<&str>,
    overrides: &[EnvOverride],
) -> ConfigError {
    let Problem { path, reason } = problem;
    if let Some(culprit) = overrides
        .iter()
        .rev()
        .find(|env_override| env_override.path.overlaps(&path))
    {
        return ConfigError::Env {
            var: culprit.var.clone(),
            reason: format!("{path}: {reason}"),
        };
    }
    let line = text.and_then(|text| {
        let document = SpannedDocument::parse(text).ok()?;
        document
            .span_of(&path)
            .map(|span| line_of_offset(text, span.start))
    });
    match line {
        Some(line) => ConfigError::AtLine {
            file: origin.to_string(),
            line,
            reason: format!("{path}: {reason}"),
        },
        None => ConfigError::Invalid {
            origin: Some(origin.to_string()),
            key: path.to_string(),
            reason,
        },
    }
}

/// Parses `text` into a `Config` without validating it, mapping TOML and serde errors to `origin:line`.
pub(crate) fn parse_strict(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let at_line = |offset: Option<usize>, reason: String| match offset {
        Some(offset) => ConfigError::AtLine {
            file: origin.to_string(),
            line: line_of_offset(text, offset),
            reason,
        },
        None => ConfigError::Invalid {
            origin: Some(origin.to_string()),
            key: "(document)".to_string(),
            reason,
        },
    };
    let document = SpannedDocument::parse(text).map_err(|error| {
        at_line(
            error.span().map(|span| span.start),
            format!("bad TOML: {}", error.message()),
        )
    })?;
    toml::from_str::<Config>(text).map_err(|error| {
        let offset = error.span().map(|span| span.start);
        let located = offset.and_then(|offset| document.locate(offset));
        let reason = match located {
            None => with_hint(error.message()),
            Some(located) => {
                let mut table = located.path.clone();
                // For an unknown key the located path ends with that key: its table is the parent.
                if unknown_key_name(error.message()).is_some() {
                    table.0.pop();
                }
                describe_unknown_key(error.message(), &table, located.is_section)
                    .unwrap_or_else(|| format!("{}: {}", located.path, with_hint(error.message())))
            }
        };
        at_line(offset, reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        match Config::from_toml_str(text, "switchboard.toml") {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn misspelled_key_names_line_table_and_alternatives() {
        let message =
            error_of("[gateway]\nlisten = \"127.0.0.1:8080\"\nlistn = \"127.0.0.1:9000\"\n");
        assert!(
            message.starts_with("switchboard.toml:3: unknown key `listn` in [gateway]"),
            "{message}"
        );
        assert!(
            message.contains("expected one of `listen`, `max_message_bytes`"),
            "{message}"
        );
    }

    #[test]
    fn misspelled_key_in_a_nested_table_names_that_table() {
        let message = error_of("[ingest.jsonrpc]\nlisen = \"127.0.0.1:8081\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: unknown key `lisen` in [ingest.jsonrpc]"),
            "{message}"
        );
    }

    #[test]
    fn unknown_section_names_line_and_known_sections() {
        let message = error_of(
            "[gateway]\nlisten = \"127.0.0.1:8080\"\n\n[gatway]\nlisten = \"127.0.0.1:8080\"\n",
        );
        assert!(
            message.starts_with("switchboard.toml:4: unknown section [gatway]"),
            "{message}"
        );
        assert!(message.contains("`gateway`"), "{message}");
    }

    #[test]
    fn bad_listen_address_names_its_line_and_key() {
        let message = error_of("[gateway]\nmax_message_bytes = 2048\nlisten = \"localhost\"\n");
        assert!(
            message.starts_with("switchboard.toml:3: gateway.listen: "),
            "{message}"
        );
        assert!(message.contains("socket address"), "{message}");
    }

    #[test]
    fn unknown_key_in_an_inline_permission_is_located() {
        let text = r#"[[realms]]
name = "realm1"
[[realms.roles]]
name = "r"
permissions = [
  { uri = "a" },
  { uri = "b", allw = {} },
]
"#;
        let message = error_of(text);
        assert!(
            message.starts_with(
                "switchboard.toml:7: unknown key `allw` in realms[0].roles[0].permissions[1]"
            ),
            "{message}"
        );
    }

    #[test]
    fn unknown_top_level_key_and_missing_field_are_located() {
        let message = error_of("listen = \"127.0.0.1:8080\"\n");
        assert!(
            message.starts_with("switchboard.toml:1: unknown key `listen` at the top level"),
            "{message}"
        );
        let message = error_of("[[realms]]\nname = \"a\"\n\n[[realms]]\nanonymous_role = \"x\"\n");
        assert!(
            message.starts_with("switchboard.toml:4: realms[1]: missing field `name`"),
            "{message}"
        );
    }

    #[test]
    fn bad_enum_value_lists_the_choices() {
        let message = error_of("[emitter]\ntransport = \"http\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: emitter.transport: unknown variant `http`"),
            "{message}"
        );
        assert!(message.contains("`jsonrpc`"), "{message}");
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let message = error_of("[gateway]\nlisten = \n");
        assert!(
            message.starts_with("switchboard.toml:2: bad TOML"),
            "{message}"
        );
    }

    #[test]
    fn missing_file_is_a_read_error_naming_the_file() {
        let path = Path::new("/nonexistent/switchboard.toml");
        let message = Config::load_with_env(path, Vec::new())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("/nonexistent/switchboard.toml: cannot read: "),
            "{message}"
        );
    }

    #[test]
    fn validation_errors_caused_by_env_name_the_variable() {
        let text = "[gateway]\nlisten = \"127.0.0.1:8080\"\n";
        let mut config = parse_strict(text, "switchboard.toml").expect("valid config");
        let vars = vec![(
            "SWITCHBOARD__GATEWAY__MAX_MESSAGE_BYTES".to_string(),
            "10".to_string(),
        )];
        let overrides = config.apply_env_tracked(vars).expect("known key");
        let message = config
            .validated("switchboard.toml", Some(text), &overrides)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "env SWITCHBOARD__GATEWAY__MAX_MESSAGE_BYTES: gateway.max_message_bytes"
            ),
            "{message}"
        );
    }

    #[test]
    fn load_reads_a_file_and_applies_env() {
        let directory =
            std::env::temp_dir().join(format!("switchboard-config-load-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temp dir");
        let path = directory.join("switchboard.toml");
        std::fs::write(&path, "[gateway]\nlisten = \"127.0.0.1:8080\"\n").expect("write config");
        let vars = vec![(
            "SWITCHBOARD__GATEWAY__LISTEN".to_string(),
            "0.0.0.0:9000".to_string(),
        )];
        let config = Config::load_with_env(&path, vars).expect("valid config");
        assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:9000");
        let _ = std::fs::remove_dir_all(&directory);
    }
}

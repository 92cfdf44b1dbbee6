//! The one error type of this crate, and the key paths that let an error point at the setting at fault.

use std::fmt;

/// Why a configuration could not be loaded, worded for the operator who has to fix it.
///
/// Every variant names where the fault is: a file and line (`switchboard.toml:3: ...`), an environment
/// variable (`env SWITCHBOARD__GATEWAY__LISTEN: ...`), or, when neither is known, the key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file (the config file or the secret file) could not be read, so nothing else can be checked.
    #[error("{file}: cannot read: {io}")]
    Read {
        /// The path as given by the caller.
        file: String,
        /// What the operating system said.
        io: std::io::Error,
    },
    /// A fault located in the config file: bad TOML, an unknown key, a bad value or a failed check.
    #[error("{file}:{line}: {reason}")]
    AtLine {
        /// The path as given by the caller.
        file: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A fault caused by an environment override, named so the operator knows which variable to fix.
    #[error("env {var}: {reason}")]
    Env {
        /// The variable name as found in the environment.
        var: String,
        /// What is wrong, naming the key it overrides.
        reason: String,
    },
    /// A failed check whose line is unknown (the config was not read from a file, or the key is absent).
    #[error("{}{key}: {reason}", origin_prefix(.origin))]
    Invalid {
        /// Where the config came from (a file path, `embedded default`), when known.
        origin: Option<String>,
        /// The key path, e.g. `realms[0].roles[1].permissions[0].uri`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn origin_prefix(origin: &Option<String>) -> String {
    origin
        .as_deref()
        .map(|origin| format!("{origin}: "))
        .unwrap_or_default()
}

/// One step of a [`KeyPath`]: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a setting lives in the config tree (`realms[0].roles[1].name`), used both to word errors and to
/// find the setting's line in the file or the environment variable that set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub(crate) Vec<Segment>);

impl KeyPath {
    /// The path of a top-level key.
    pub(crate) fn root(key: &str) -> Self {
        Self(vec![Segment::Key(key.to_string())])
    }

    /// This path extended by a table key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// True when one path is a prefix of the other, i.e. setting one changes the other.
    pub(crate) fn overlaps(&self, other: &KeyPath) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }

    /// How the table at this path is named to the user: `[gateway]`, `[ingest.jsonrpc]` or, inside an
    /// array, `realms[0].roles[1]`.
    pub(crate) fn table_label(&self) -> String {
        if self
            .0
            .iter()
            .all(|segment| matches!(segment, Segment::Key(_)))
        {
            format!("[{self}]")
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line of a byte offset into `text`; offsets past the end count as the last line.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

/// Rewrites serde's `unknown field `x`, expected one of ...` into the wording of this crate, naming the table
/// the key was found in; `None` when `message` is about something else.
pub(crate) fn describe_unknown_key(
    message: &str,
    table: &KeyPath,
    is_section: bool,
) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, alternatives) = rest.split_once('`')?;
    let alternatives = alternatives.trim_start_matches(',').trim_start();
    let what = if !table.0.is_empty() {
        format!("unknown key `{key}` in {}", table.table_label())
    } else if is_section {
        format!("unknown section [{key}]")
    } else {
        format!("unknown key `{key}` at the top level")
    };
    Some(format!("{what}; {alternatives}"))
}

/// The unknown key named by a serde `unknown field` message.
pub(crate) fn unknown_key_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(key, _)| key)
}

/// Adds a hint to serde messages whose fix is not obvious from the message alone.
pub(crate) fn with_hint(message: &str) -> String {
    if message.contains("socket address") {
        format!("{message} (expected IP:PORT, e.g. \"127.0.0.1:8080\")")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_print_like_the_file_reads() {
        let path = KeyPath::root("realms")
            .index(0)
            .key("roles")
            .index(1)
            .key("name");
        assert_eq!(path.to_string(), "realms[0].roles[1].name");
        assert_eq!(
            KeyPath::root("ingest").key("jsonrpc").table_label(),
            "[ingest.jsonrpc]"
        );
        assert!(KeyPath::root("realms").overlaps(&path));
        assert!(!KeyPath::root("gateway").overlaps(&path));
    }

    #[test]
    fn lines_are_one_based_and_never_overflow() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 999), 3);
    }

    #[test]
    fn display_formats_match_the_documented_shapes() {
        let at_line = ConfigError::AtLine {
            file: "s.toml".into(),
            line: 3,
            reason: "bad".into(),
        };
        assert_eq!(at_line.to_string(), "s.toml:3: bad");
        let env = ConfigError::Env {
            var: "SWITCHBOARD__A__B".into(),
            reason: "bad".into(),
        };
        assert_eq!(env.to_string(), "env SWITCHBOARD__A__B: bad");
        let invalid = ConfigError::Invalid {
            origin: None,
            key: "gateway.listen".into(),
            reason: "bad".into(),
        };
        assert_eq!(invalid.to_string(), "gateway.listen: bad");
    }
}

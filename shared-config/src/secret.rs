//! Turning `[security]` into the HMAC key itself, so that the gateway and emitters read `secret_file` the
//! same way.

use crate::error::ConfigError;
use crate::SecurityConfig;

impl SecurityConfig {
    /// The configured secret: `secret`, or the content of `secret_file` without its trailing newline(s).
    /// `Ok(None)` when neither is set (the gateway then generates a random secret and prints it).
    ///
    /// A relative `secret_file` is relative to the working directory. An empty secret is an error, as is
    /// setting both keys.
    pub fn resolve_secret(&self) -> Result<Option<String>, ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            origin: None,
            key: key.to_string(),
            reason,
        };
        match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => Err(invalid(
                "security.secret_file",
                "set either `secret` or `secret_file`, not both".to_string(),
            )),
            (Some(secret), None) if secret.is_empty() => Err(invalid(
                "security.secret",
                "the secret is empty".to_string(),
            )),
            (Some(secret), None) => Ok(Some(secret.clone())),
            (None, Some(path)) => {
                let file = path.display().to_string();
                let content = std::fs::read_to_string(path).map_err(|io| ConfigError::Read {
                    file: file.clone(),
                    io,
                })?;
                let secret = content.trim_end_matches(['\n', '\r']);
                if secret.is_empty() {
                    return Err(invalid("security.secret_file", format!("{file} is empty")));
                }
                Ok(Some(secret.to_string()))
            }
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str) -> std::path::PathBuf {
        let directory =
            std::env::temp_dir().join(format!("switchboard-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temp dir");
        let path = directory.join(name);
        std::fs::write(&path, content).expect("write secret file");
        path
    }

    #[test]
    fn secret_file_is_read_without_its_trailing_newline() {
        let path = temp_file("secret", "s3cr3t value\n");
        let security = SecurityConfig {
            secret_file: Some(path.clone()),
            ..SecurityConfig::default()
        };
        assert_eq!(
            security.resolve_secret().expect("readable").as_deref(),
            Some("s3cr3t value")
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn inline_secret_and_no_secret() {
        let security = SecurityConfig {
            secret: Some("abc".to_string()),
            ..SecurityConfig::default()
        };
        assert_eq!(
            security.resolve_secret().expect("inline").as_deref(),
            Some("abc")
        );
        assert_eq!(
            SecurityConfig::default().resolve_secret().expect("none"),
            None
        );
    }

    #[test]
    fn missing_secret_file_names_the_file() {
        let security = SecurityConfig {
            secret_file: Some("/nonexistent/secret".into()),
            ..SecurityConfig::default()
        };
        let message = security.resolve_secret().unwrap_err().to_string();
        assert!(
            message.starts_with("/nonexistent/secret: cannot read: "),
            "{message}"
        );
    }

    #[test]
    fn empty_secret_file_is_refused() {
        let path = temp_file("empty", "\n");
        let security = SecurityConfig {
            secret_file: Some(path.clone()),
            ..SecurityConfig::default()
        };
        let message = security.resolve_secret().unwrap_err().to_string();
        assert!(
            message.contains("security.secret_file") && message.contains("is empty"),
            "{message}"
        );
        let _ = std::fs::remove_file(path);
    }
}

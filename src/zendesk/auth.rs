//! Zendesk credentials: API token (Basic `{email}/token:{token}`) or OAuth bearer token.
//! Secrets never appear in `Debug` output or logs.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderValue;

use crate::config::ZendeskConfig;

/// Largest token file read, in bytes.
const MAX_TOKEN_FILE: u64 = 4096;

pub use crate::secret::Secret;

/// How the client authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Basic base64("{email}/token:{token}")`.
    ApiToken { email: String, token: Secret },
    /// `Authorization: Bearer {token}`.
    OAuth { token: Secret },
    /// No credentials (a lab simulator that does not check them).
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("zendesk.api_token_file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error("zendesk.api_token_credential {name}: {reason}")]
    Credential { name: String, reason: String },
    #[error("zendesk.api_token is set but zendesk.email is not")]
    MissingEmail,
    #[error("the credentials contain characters not allowed in an HTTP header")]
    BadHeader,
}

impl Credentials {
    /// From the configuration: `oauth_token` wins; else `email` with `api_token` (which the
    /// environment can set as `ZENDESK_IVR_ZENDESK__API_TOKEN`), `api_token_file`, or
    /// `api_token_credential` (a systemd credential in `$CREDENTIALS_DIRECTORY`).
    pub fn from_config(config: &ZendeskConfig) -> Result<Credentials, CredentialsError> {
        Self::from_config_in(config, std::env::var_os("CREDENTIALS_DIRECTORY").as_deref())
    }

    /// [`Credentials::from_config`] with the credentials directory given.
    pub fn from_config_in(
        config: &ZendeskConfig,
        credentials_dir: Option<&std::ffi::OsStr>,
    ) -> Result<Credentials, CredentialsError> {
        if let Some(token) = config.oauth_token.as_deref().filter(|t| !t.trim().is_empty()) {
            return Ok(Credentials::OAuth { token: Secret::new(token.trim()) });
        }
        let token = match (&config.api_token, &config.api_token_file) {
            (Some(token), _) if !token.trim().is_empty() => Some(token.trim().to_string()),
            (_, Some(path)) => Some(read_token_file(path)?),
            _ => match &config.api_token_credential {
                Some(name) => Some(read_credential(credentials_dir, name)?),
                None => None,
            },
        };
        match (token, &config.email) {
            (Some(token), Some(email)) => {
                Ok(Credentials::ApiToken { email: email.clone(), token: Secret::new(token) })
            }
            (Some(_), None) => Err(CredentialsError::MissingEmail),
            (None, _) => Ok(Credentials::None),
        }
    }

    /// The `Authorization` header value, marked sensitive so HTTP-level logs redact it.
    pub fn header(&self) -> Result<Option<HeaderValue>, CredentialsError> {
        let text = match self {
            Credentials::ApiToken { email, token } => {
                format!("Basic {}", STANDARD.encode(format!("{email}/token:{}", token.expose())))
            }
            Credentials::OAuth { token } => format!("Bearer {}", token.expose()),
            Credentials::None => return Ok(None),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| CredentialsError::BadHeader)?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}

fn read_token_file(path: &Path) -> Result<String, CredentialsError> {
    let err =
        |reason: String| CredentialsError::TokenFile { path: path.display().to_string(), reason };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_TOKEN_FILE {
        return Err(err(format!("larger than {MAX_TOKEN_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(token.to_string())
}

/// A systemd credential: `name` is a plain file name in `dir` (`$CREDENTIALS_DIRECTORY`).
fn read_credential(dir: Option<&std::ffi::OsStr>, name: &str) -> Result<String, CredentialsError> {
    let err = |reason: &str| CredentialsError::Credential {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    if !plain {
        return Err(err("must be a plain credential name (no '/')"));
    }
    let dir = dir.ok_or_else(|| {
        err("$CREDENTIALS_DIRECTORY is not set (run by systemd with LoadCredential=)")
    })?;
    read_token_file(&Path::new(dir).join(name))
}

/// Decodes standard base64; `None` on bad input. Used by the simulator's auth check.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    STANDARD.decode(input.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_can_come_from_a_systemd_credential() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zendesk-token"), "cred-token\n").unwrap();
        let config = ZendeskConfig {
            email: Some("ivr@example.com".into()),
            api_token_credential: Some("zendesk-token".into()),
            ..ZendeskConfig::default()
        };
        let creds = Credentials::from_config_in(&config, Some(dir.path().as_os_str())).unwrap();
        assert_eq!(
            creds,
            Credentials::ApiToken {
                email: "ivr@example.com".into(),
                token: Secret::new("cred-token")
            }
        );
        let unset = Credentials::from_config_in(&config, None).unwrap_err();
        assert!(unset.to_string().contains("CREDENTIALS_DIRECTORY"), "{unset}");
        let escape = ZendeskConfig { api_token_credential: Some("../x".into()), ..config };
        let refused = Credentials::from_config_in(&escape, Some(dir.path().as_os_str()));
        assert!(matches!(refused, Err(CredentialsError::Credential { .. })));
    }

    #[test]
    fn basic_header_is_email_slash_token() {
        let creds =
            Credentials::ApiToken { email: "ivr@example.com".into(), token: Secret::new("abc123") };
        let header = creds.header().unwrap().unwrap();
        assert!(header.is_sensitive());
        let text = header.to_str().unwrap();
        let encoded = text.strip_prefix("Basic ").unwrap();
        assert_eq!(base64_decode(encoded).unwrap(), b"ivr@example.com/token:abc123");
        assert!(!format!("{creds:?}").contains("abc123"));
    }

    #[test]
    fn token_comes_from_config_or_file_and_oauth_wins() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "  filetoken\n").unwrap();
        let mut config = ZendeskConfig {
            email: Some("a@b.c".into()),
            api_token_file: Some(file.path().to_path_buf()),
            ..ZendeskConfig::default()
        };
        assert_eq!(
            Credentials::from_config(&config).unwrap(),
            Credentials::ApiToken { email: "a@b.c".into(), token: Secret::new("filetoken") }
        );
        config.api_token = Some("direct".into());
        assert!(matches!(
            Credentials::from_config(&config).unwrap(),
            Credentials::ApiToken { token, .. } if token.expose() == "direct"
        ));
        config.oauth_token = Some("bearer".into());
        assert_eq!(
            Credentials::from_config(&config).unwrap().header().unwrap().unwrap(),
            "Bearer bearer"
        );
        config.oauth_token = None;
        config.email = None;
        assert!(matches!(Credentials::from_config(&config), Err(CredentialsError::MissingEmail)));
        config.email = Some("a@b.c".into());
        config.api_token = None;
        config.api_token_file = Some("/nonexistent/token".into());
        assert!(Credentials::from_config(&config).is_err());
    }
}

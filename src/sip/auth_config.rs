//! Config of SIP authentication: `[sip.auth]` (digest on inbound INVITEs) and
//! `[[sip.register]]` (registering to trunks), and reading their passwords.
//!
//! Passwords never sit in the config itself: each user or registration names an
//! environment variable (`password_env`) or a file (`password_file`, trailing white space
//! trimmed). They are read once at start into a [`Secret`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::secret::Secret;
use crate::sip::admission::SourceNet;
use crate::sip::digest::Algorithm;

/// Largest password file read, in bytes.
const MAX_PASSWORD_FILE: u64 = 4096;

/// `[sip.auth]`: digest authentication of inbound INVITEs (RFC 8760).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipAuthConfig {
    pub enabled: bool,
    pub realm: String,
    /// Offered in this order: "SHA-256", "MD5".
    pub algorithms: Vec<String>,
    /// How long a nonce may be used before the answer is `stale=true`.
    pub nonce_lifetime_s: u64,
    /// Sources (addresses or CIDRs) whose INVITEs are not challenged, e.g. a trunk.
    pub exempt_sources: Vec<SourceNet>,
    /// Most nonces whose nonce count is remembered for replay protection.
    pub max_tracked_nonces: usize,
    pub users: Vec<AuthUserConfig>,
}

impl Default for SipAuthConfig {
    fn default() -> Self {
        SipAuthConfig {
            enabled: false,
            realm: "zendesk-ivr".into(),
            algorithms: vec!["SHA-256".into(), "MD5".into()],
            nonce_lifetime_s: 300,
            exempt_sources: Vec::new(),
            max_tracked_nonces: 65_536,
            users: Vec::new(),
        }
    }
}

/// One `[[sip.auth.users]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthUserConfig {
    pub name: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// One `[[sip.register]]` entry: a registration to a trunk or registrar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// Names the registration in logs, metrics and the status page.
    pub name: String,
    /// The registrar's URI, e.g. `sip:trunk.example.net:5060` (the host must be an IP
    /// address or resolve through the system resolver).
    pub registrar: String,
    /// The user part of the address of record (To/From) and of our Contact.
    pub user: String,
    /// The digest user name, when it differs from `user`.
    pub auth_user: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Registration interval asked for, in seconds.
    #[serde(default = "default_register_expires")]
    pub expires_s: u32,
    /// "udp" or "tcp".
    #[serde(default = "default_register_transport")]
    pub transport: String,
}

fn default_register_expires() -> u32 {
    3600
}

fn default_register_transport() -> String {
    "udp".into()
}

impl SipAuthConfig {
    /// The algorithms to offer, checked.
    pub fn algorithm_list(&self) -> Result<Vec<Algorithm>, ConfigError> {
        let list: Option<Vec<Algorithm>> =
            self.algorithms.iter().map(|a| Algorithm::parse(a)).collect();
        match list {
            Some(list) if !list.is_empty() => Ok(list),
            _ => Err(ConfigError::Key {
                key: "sip.auth.algorithms",
                reason: format!(
                    "want a list of \"SHA-256\" and \"MD5\", got {:?}",
                    self.algorithms
                ),
            }),
        }
    }

    pub fn nonce_lifetime(&self) -> Duration {
        Duration::from_secs(self.nonce_lifetime_s)
    }
}

/// Reads a password from `env` (a variable's name) or `file`; exactly one must be set.
/// `key` names the config entry in the error.
pub fn read_password(
    env: Option<&str>,
    file: Option<&Path>,
    key: &'static str,
) -> Result<Secret, ConfigError> {
    let err = |reason: String| ConfigError::Key { key, reason };
    match (env, file) {
        (Some(var), None) => std::env::var(var)
            .map(Secret::new)
            .map_err(|_| err(format!("environment variable {var} is not set"))),
        (None, Some(path)) => {
            use std::io::Read as _;
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_PASSWORD_FILE).read_to_string(&mut text))
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            Ok(Secret::new(text.trim_end()))
        }
        _ => Err(err("set exactly one of password_env and password_file".into())),
    }
}

impl AuthUserConfig {
    pub fn password(&self) -> Result<Secret, ConfigError> {
        read_password(
            self.password_env.as_deref(),
            self.password_file.as_deref(),
            "sip.auth.users.password_env",
        )
    }
}

impl RegisterConfig {
    pub fn password(&self) -> Result<Secret, ConfigError> {
        read_password(
            self.password_env.as_deref(),
            self.password_file.as_deref(),
            "sip.register.password_env",
        )
    }
}

impl SipAuthConfig {
    /// The INVITE authentication to install, or `None` when `enabled` is off. Reads every
    /// user's password; the nonce key and the decoy password are fresh random values.
    pub fn invite_auth(
        &self,
        now: std::time::Instant,
    ) -> Result<Option<crate::sip::dialog::InviteAuth>, ConfigError> {
        use rand::Rng as _;
        use rand::distr::{Alphanumeric, SampleString as _};

        use crate::sip::digest::{AuthUser, Verifier, VerifierConfig};
        if !self.enabled {
            return Ok(None);
        }
        if self.users.is_empty() {
            return Err(ConfigError::Key {
                key: "sip.auth.users",
                reason: "sip.auth.enabled needs at least one user".into(),
            });
        }
        let users = self
            .users
            .iter()
            .map(|u| Ok(AuthUser { name: u.name.clone(), password: u.password()?.expose().into() }))
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let config = VerifierConfig {
            realm: self.realm.clone(),
            algorithms: self.algorithm_list()?,
            nonce_lifetime: self.nonce_lifetime(),
            max_tracked_nonces: self.max_tracked_nonces,
        };
        let mut rng = rand::rng();
        let key: [u8; 32] = rng.random();
        let decoy = Alphanumeric.sample_string(&mut rng, 24);
        let verifier = Verifier::new(now, config, &users, key, &decoy);
        Ok(Some(crate::sip::dialog::InviteAuth { verifier, exempt: self.exempt_sources.clone() }))
    }
}

/// What `zendesk-ivr check` says of `[sip.auth]` and each `[[sip.register]]`: whether the
/// settings are usable and every password can be read (reads files: call it off the
/// async workers).
pub fn check(sip: &crate::config::SipConfig) -> Vec<(String, Result<String, String>)> {
    let mut lines = Vec::new();
    let auth = if sip.auth.enabled {
        sip.auth.invite_auth(std::time::Instant::now()).map(|_| {
            format!(
                "INVITEs need digest auth in realm {:?} ({} users)",
                sip.auth.realm,
                sip.auth.users.len()
            )
        })
    } else {
        Ok("off".to_string())
    };
    lines.push(("sip.auth".to_string(), auth.map_err(|e| e.to_string())));
    for entry in &sip.register {
        let usable = match (entry.password(), entry.transport.to_ascii_lowercase().as_str()) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), "udp" | "tcp")
                if crate::sip::header_text::host_port(&entry.registrar).is_some() =>
            {
                Ok(format!("{} as {}, every {} s", entry.registrar, entry.user, entry.expires_s))
            }
            (Ok(_), _) => Err(format!(
                "registrar {:?} must be a sip: URI and transport udp or tcp",
                entry.registrar
            )),
        };
        lines.push((format!("sip.register {}", entry.name), usable));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::config::Config;

    const PASSWORD: &str = "pa55-in-a-file";

    fn config_with_secrets() -> (Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("trunk.pw");
        std::fs::File::create(&password)
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let toml = format!(
            "[sip.auth]\nenabled = true\nexempt_sources = [\"10.0.0.0/8\", \"192.0.2.7\"]\n\
             [[sip.auth.users]]\nname = \"alice\"\npassword_file = \"{p}\"\n\
             [[sip.register]]\nname = \"trunk\"\nregistrar = \"sip:192.0.2.1\"\nuser = \"ivr\"\n\
             password_file = \"{p}\"\n",
            p = password.display()
        );
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        (Config::load_with_env(Some(&file), []).unwrap(), dir)
    }

    #[test]
    fn passwords_are_read_from_files_and_never_shown_by_debug() {
        let (config, _dir) = config_with_secrets();
        let register = &config.sip.register[0];
        assert_eq!(register.password().unwrap().expose(), PASSWORD);
        assert_eq!((register.expires_s, register.transport.as_str()), (3600, "udp"));
        let auth = config.sip.auth.invite_auth(std::time::Instant::now()).unwrap().unwrap();
        assert_eq!(auth.exempt.len(), 2);
        let text = format!(
            "{config:?} {auth:?} {:?} {:?}",
            register.password().unwrap(),
            config.sip.auth.users[0].password().unwrap()
        );
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(check(&config.sip).iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn missing_passwords_and_bad_settings_are_errors_naming_the_key() {
        let mut auth = SipAuthConfig { enabled: true, ..SipAuthConfig::default() };
        let err = auth.invite_auth(std::time::Instant::now()).unwrap_err().to_string();
        assert!(err.contains("sip.auth.users"), "{err}");
        auth.users.push(AuthUserConfig {
            name: "a".into(),
            password_env: Some("ZENDESK_IVR_TEST_SURELY_UNSET_PASSWORD".into()),
            password_file: None,
        });
        let err = auth.invite_auth(std::time::Instant::now()).unwrap_err().to_string();
        assert!(err.contains("ZENDESK_IVR_TEST_SURELY_UNSET_PASSWORD"), "{err}");
        auth.algorithms = vec!["SHA-1".into()];
        assert!(auth.algorithm_list().unwrap_err().to_string().contains("sip.auth.algorithms"));
        assert!("not-a-net".parse::<SourceNet>().is_err(), "config loading refuses it");
    }
}

//! Files that hold secrets must not be readable by everyone on the host. `run` logs a
//! warning for each one that is, and `check` reports it: the configuration file when it
//! holds a secret value itself, and every `*_file` key that names a secret's file.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::Value;

use crate::config::Config;

/// Keys whose value is a secret, wherever they appear in the configuration file.
const SECRET_KEYS: &[&str] = &["api_token", "oauth_token", "api_key", "password", "secret"];

/// One warning per secret-holding file that others can read, naming it and its mode.
pub fn warnings(config_file: Option<&Path>, config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(file) = config_file {
        let keys = secret_keys_in(file);
        if !keys.is_empty() && readable_by_others(file) {
            found.push(format!(
                "{} holds {} and can be read by every user ({}): chmod 600 it, or move the \
                 secret to a *_file key or the environment",
                file.display(),
                keys.join(", "),
                mode_text(file)
            ));
        }
    }
    for (key, path) in secret_file_keys(config) {
        if readable_by_others(&path) {
            found.push(format!(
                "{key} {} can be read by every user ({}): chmod 600 it",
                path.display(),
                mode_text(&path)
            ));
        }
    }
    found
}

/// Config keys that name a file holding a secret, with the file.
fn secret_file_keys(config: &Config) -> Vec<(&'static str, PathBuf)> {
    let mut files = Vec::new();
    if let Some(path) = &config.zendesk.api_token_file {
        files.push(("zendesk.api_token_file", path.clone()));
    }
    if let Some(path) = &config.tts.http.api_key_file {
        files.push(("tts.http.api_key_file", path.clone()));
    }
    files
}

/// The dotted names of secret keys with a non-empty value in the TOML file.
fn secret_keys_in(file: &Path) -> Vec<String> {
    let Ok(value) = Figment::from(Toml::file_exact(file)).extract::<Value>() else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    collect_secret_keys(&value, "", &mut keys);
    keys
}

fn collect_secret_keys(value: &Value, prefix: &str, keys: &mut Vec<String>) {
    match value {
        Value::Dict(_, dict) => {
            for (name, inner) in dict {
                let path =
                    if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                let is_secret = SECRET_KEYS.contains(&name.as_str())
                    && inner.as_str().is_some_and(|text| !text.trim().is_empty());
                if is_secret {
                    keys.push(path);
                } else {
                    collect_secret_keys(inner, &path, keys);
                }
            }
        }
        Value::Array(_, items) => {
            for (index, inner) in items.iter().enumerate() {
                collect_secret_keys(inner, &format!("{prefix}[{index}]"), keys);
            }
        }
        _ => {}
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(unix)]
fn mode_text(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| format!("mode {:o}", meta.permissions().mode() & 0o777))
        .unwrap_or_else(|_| "mode unknown".into())
}

#[cfg(not(unix))]
fn mode_text(_path: &Path) -> String {
    "mode unknown".into()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file_with(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn a_readable_config_holding_a_token_is_named_with_its_keys() {
        let text = "[zendesk]\napi_token = \"t0k3n\"\n[[sip.register]]\npassword = \"pw\"\n";
        let file = file_with(text, 0o644);
        let found = warnings(Some(file.path()), &Config::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("zendesk.api_token"), "{}", found[0]);
        assert!(found[0].contains("sip.register[0].password"), "{}", found[0]);
        assert!(found[0].contains("mode 644"), "{}", found[0]);
        assert!(!found[0].contains("t0k3n") && !found[0].contains("\"pw\""), "{}", found[0]);
    }

    #[test]
    fn a_private_config_or_one_without_secrets_is_fine() {
        let secret = file_with("[zendesk]\napi_token = \"t0k3n\"\n", 0o600);
        assert!(warnings(Some(secret.path()), &Config::default()).is_empty());
        let plain =
            file_with("[zendesk]\nurl = \"https://x.zendesk.com\"\napi_token = \"\"\n", 0o644);
        assert!(warnings(Some(plain.path()), &Config::default()).is_empty());
    }

    #[test]
    fn a_readable_token_file_is_named_by_its_key() {
        let token = file_with("t0k3n\n", 0o604);
        let mut config = Config::default();
        config.zendesk.api_token_file = Some(token.path().to_path_buf());
        let found = warnings(None, &config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("zendesk.api_token_file "), "{}", found[0]);
        std::fs::set_permissions(token.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(warnings(None, &config).is_empty(), "group-readable is the admin's choice");
    }
}

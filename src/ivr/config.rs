//! The IVR's configuration sections: `[ivr]` (menu, language, prompts) and `[routing]`
//! (rules, queues, target probing). Part of [`crate::config::Config`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::ivr::routing::CallerKind;
use crate::zendesk::model::{Priority, Status};

/// What the menu does after `menu_attempts` tries without a valid key.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MenuDefault {
    /// Send the caller to an agent.
    #[default]
    Agent,
    /// Say goodbye and hang up.
    Hangup,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IvrConfig {
    /// The language of callers who are unknown or whose locale has no prompts.
    pub default_language: String,
    /// Tries (the first hearing included) before the menu takes `menu_default`.
    pub menu_attempts: u32,
    pub menu_default: MenuDefault,
    /// Seconds to wait for a key after the menu.
    pub no_input_s: u64,
    /// A ticket subject is cut at a word boundary to this many characters.
    pub max_subject_chars: usize,
    /// The menu's keys.
    pub key_agent: char,
    pub key_end: char,
    pub key_repeat: char,
    /// Sentence templates by language, over the built-in `en` and `nb` ones:
    /// `[ivr.prompts.en] menu = "..."`. See `ivr::prompts::PromptKey` for the names.
    pub prompts: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            default_language: "en".into(),
            menu_attempts: 3,
            menu_default: MenuDefault::Agent,
            no_input_s: 8,
            max_subject_chars: 80,
            key_agent: '1',
            key_end: '2',
            key_repeat: '*',
            prompts: BTreeMap::new(),
        }
    }
}

impl IvrConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::ivr::prompts::Prompts::new(&self.default_language, &self.prompts)
            .map_err(|err| ConfigError::Invalid(err.to_string()))?;
        if self.menu_attempts == 0 {
            return Err(key("ivr.menu_attempts", "must be at least 1"));
        }
        if self.no_input_s == 0 {
            return Err(key("ivr.no_input_s", "must be above zero"));
        }
        let keys = [self.key_agent, self.key_end, self.key_repeat];
        if keys.iter().any(|k| !crate::media::dtmf::DIGITS.contains(k)) {
            return Err(key("ivr.key_agent", "menu keys must be DTMF digits (0-9 * # A-D)"));
        }
        if keys[0] == keys[1] || keys[0] == keys[2] || keys[1] == keys[2] {
            return Err(key("ivr.key_agent", "key_agent, key_end and key_repeat must differ"));
        }
        Ok(())
    }
}

/// One routing rule: every condition given must hold; the first matching rule wins.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Ticket priorities (any of).
    pub priority: Vec<Priority>,
    /// Ticket statuses (any of).
    pub status: Vec<Status>,
    /// Ticket tags (any of).
    pub tags: Vec<String>,
    /// Caller kinds (any of): known, unknown, anonymous, fallback.
    pub caller: Vec<CallerKind>,
    /// The queue (a name in `[routing.queues]`, or `default` / `priority`).
    pub queue: String,
}

/// A queue: SIP targets in the order they are tried.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub targets: Vec<String>,
    /// Sent to the target as `X-Zendesk-Queue-Priority` when set.
    pub priority: Option<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// The `default` queue's target when `[routing.queues.default]` is not given.
    pub default_queue: String,
    /// The `priority` queue's target when `[routing.queues.priority]` is not given;
    /// urgent and high tickets go there unless rules say otherwise.
    pub priority_queue: String,
    /// Checked in order; the first match picks the queue. With none, urgent and high
    /// tickets go to `priority` and everyone else to `default`.
    pub rules: Vec<RuleConfig>,
    pub queues: BTreeMap<String, QueueConfig>,
    /// Seconds between OPTIONS probes of each target (0: no probing, all count as up).
    pub probe_interval_s: u64,
    /// While a caller waits for a free agent, seconds between tries.
    pub retry_interval_s: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            default_queue: "sip:support@127.0.0.1:5070".into(),
            priority_queue: "sip:priority@127.0.0.1:5070".into(),
            rules: Vec::new(),
            queues: BTreeMap::new(),
            probe_interval_s: 10,
            retry_interval_s: 15,
        }
    }
}

impl RoutingConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let router = crate::ivr::routing::Router::from_config(self)?;
        for target in router.targets() {
            crate::transfer::check_target(target).map_err(|err| {
                ConfigError::Invalid(format!("routing: target {target:?}: {err}"))
            })?;
        }
        if self.retry_interval_s == 0 {
            return Err(key("routing.retry_interval_s", "must be above zero"));
        }
        Ok(())
    }
}

fn key(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Key { key, reason: reason.into() }
}

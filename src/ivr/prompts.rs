//! What the IVR says (sans-IO): sentence templates per language, the language a caller
//! gets, and the cleaning of untrusted ticket text before it is spoken.
//!
//! Templates come built in for English (`en`) and Norwegian Bokmål (`nb`); config
//! (`[ivr.prompts.<lang>]`) overrides any of them or adds a language. Placeholders are
//! checked when the config loads: a template that names a placeholder its sentence does
//! not have is an error naming the key, so a `{{ticketId}}`-style typo cannot ship.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::zendesk::model::Status;

/// A sentence the IVR can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKey {
    /// Said once when the lookup is still running after the welcome.
    Comfort,
    /// Before the status, for a caller greeted by name.
    Greeting,
    StatusTicket,
    StatusTicketNoSubject,
    StatusNoTicket,
    StatusUnknown,
    StatusAnonymous,
    StatusFallback,
    /// Said instead of the caller's status when it could not be rendered in time.
    StatusGeneric,
    Menu,
    Sorry,
    Goodbye,
    Connecting,
    TransferFailed,
    AgentsBusy,
    /// The busy menu for a caller whose number is withheld (no callback to offer).
    AgentsBusyNoCallback,
    CallbackRequested,
    BusyGoodbye,
    StatusNew,
    StatusOpen,
    StatusPending,
    StatusHold,
    /// How the star and pound keys are said.
    KeyStar,
    KeyPound,
}

impl PromptKey {
    pub const ALL: [PromptKey; 24] = [
        PromptKey::Comfort,
        PromptKey::Greeting,
        PromptKey::StatusTicket,
        PromptKey::StatusTicketNoSubject,
        PromptKey::StatusNoTicket,
        PromptKey::StatusUnknown,
        PromptKey::StatusAnonymous,
        PromptKey::StatusFallback,
        PromptKey::StatusGeneric,
        PromptKey::Menu,
        PromptKey::Sorry,
        PromptKey::Goodbye,
        PromptKey::Connecting,
        PromptKey::TransferFailed,
        PromptKey::AgentsBusy,
        PromptKey::AgentsBusyNoCallback,
        PromptKey::CallbackRequested,
        PromptKey::BusyGoodbye,
        PromptKey::StatusNew,
        PromptKey::StatusOpen,
        PromptKey::StatusPending,
        PromptKey::StatusHold,
        PromptKey::KeyStar,
        PromptKey::KeyPound,
    ];

    /// The config name (`[ivr.prompts.en] menu = "..."`).
    pub fn name(self) -> &'static str {
        match self {
            PromptKey::Comfort => "comfort",
            PromptKey::Greeting => "greeting",
            PromptKey::StatusTicket => "status_ticket",
            PromptKey::StatusTicketNoSubject => "status_ticket_no_subject",
            PromptKey::StatusNoTicket => "status_no_ticket",
            PromptKey::StatusUnknown => "status_unknown",
            PromptKey::StatusAnonymous => "status_anonymous",
            PromptKey::StatusFallback => "status_fallback",
            PromptKey::StatusGeneric => "status_generic",
            PromptKey::Menu => "menu",
            PromptKey::Sorry => "sorry",
            PromptKey::Goodbye => "goodbye",
            PromptKey::Connecting => "connecting",
            PromptKey::TransferFailed => "transfer_failed",
            PromptKey::AgentsBusy => "agents_busy",
            PromptKey::AgentsBusyNoCallback => "agents_busy_no_callback",
            PromptKey::CallbackRequested => "callback_requested",
            PromptKey::BusyGoodbye => "busy_goodbye",
            PromptKey::StatusNew => "status_new",
            PromptKey::StatusOpen => "status_open",
            PromptKey::StatusPending => "status_pending",
            PromptKey::StatusHold => "status_hold",
            PromptKey::KeyStar => "key_star",
            PromptKey::KeyPound => "key_pound",
        }
    }

    pub fn from_name(name: &str) -> Option<PromptKey> {
        PromptKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The placeholders this sentence may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            PromptKey::Greeting | PromptKey::StatusNoTicket => &["first_name"],
            PromptKey::StatusTicket => &["id", "subject", "status"],
            PromptKey::StatusTicketNoSubject => &["id", "status"],
            PromptKey::CallbackRequested => &["number"],
            PromptKey::Menu => &["agent_key", "end_key", "repeat_key"],
            PromptKey::AgentsBusy | PromptKey::AgentsBusyNoCallback => &["agent_key", "end_key"],
            _ => &[],
        }
    }

    /// The word for a ticket status.
    pub fn for_status(status: Status) -> Option<PromptKey> {
        match status {
            Status::New => Some(PromptKey::StatusNew),
            Status::Open => Some(PromptKey::StatusOpen),
            Status::Pending => Some(PromptKey::StatusPending),
            Status::Hold => Some(PromptKey::StatusHold),
            _ => None,
        }
    }
}

const EN: &[(PromptKey, &str)] = &[
    (PromptKey::Comfort, "One moment while we look up your information."),
    (PromptKey::Greeting, "Hello {first_name}."),
    (PromptKey::StatusTicket, "Your ticket {id}, about {subject}, is {status}."),
    (PromptKey::StatusTicketNoSubject, "Your ticket {id} is {status}."),
    (PromptKey::StatusNoTicket, "You have no open tickets with us."),
    (PromptKey::StatusUnknown, "We could not find an account for the number you are calling from."),
    (PromptKey::StatusAnonymous, "Your number is hidden, so we cannot look up your tickets."),
    (PromptKey::StatusFallback, "We cannot look up your tickets right now."),
    (PromptKey::StatusGeneric, "We have found your latest ticket."),
    (
        PromptKey::Menu,
        "Press {agent_key} to talk to an agent, or {end_key} to end the call. Press {repeat_key} to hear your ticket again.",
    ),
    (PromptKey::Sorry, "Sorry, I did not get that."),
    (PromptKey::Goodbye, "Thank you for calling. Goodbye."),
    (PromptKey::Connecting, "Connecting you to an agent."),
    (PromptKey::TransferFailed, "Sorry, we could not connect you to an agent."),
    (
        PromptKey::AgentsBusy,
        "All our agents are busy. Press {agent_key} to keep waiting, or {end_key} to ask us to call you back.",
    ),
    (
        PromptKey::AgentsBusyNoCallback,
        "All our agents are busy. Press {agent_key} to keep waiting, or {end_key} to end the call.",
    ),
    (PromptKey::CallbackRequested, "Thank you. We will call you back. Goodbye."),
    (
        PromptKey::BusyGoodbye,
        "Sorry, no agent is free right now. Please call again later. Goodbye.",
    ),
    (PromptKey::StatusNew, "received"),
    (PromptKey::StatusOpen, "being worked on"),
    (PromptKey::StatusPending, "waiting for your reply"),
    (PromptKey::StatusHold, "on hold"),
    (PromptKey::KeyStar, "star"),
    (PromptKey::KeyPound, "pound"),
];

const NB: &[(PromptKey, &str)] = &[
    (PromptKey::Comfort, "Et øyeblikk mens vi finner informasjonen din."),
    (PromptKey::Greeting, "Hei {first_name}."),
    (PromptKey::StatusTicket, "Saken din {id}, om {subject}, er {status}."),
    (PromptKey::StatusTicketNoSubject, "Saken din {id} er {status}."),
    (PromptKey::StatusNoTicket, "Du har ingen åpne saker hos oss."),
    (PromptKey::StatusUnknown, "Vi fant ingen konto for nummeret du ringer fra."),
    (PromptKey::StatusAnonymous, "Nummeret ditt er skjult, så vi kan ikke finne sakene dine."),
    (PromptKey::StatusFallback, "Vi kan ikke slå opp sakene dine akkurat nå."),
    (PromptKey::StatusGeneric, "Vi har funnet den siste saken din."),
    (
        PromptKey::Menu,
        "Trykk {agent_key} for å snakke med en rådgiver, eller {end_key} for å avslutte. Trykk {repeat_key} for å høre saken din igjen.",
    ),
    (PromptKey::Sorry, "Beklager, det fikk jeg ikke med meg."),
    (PromptKey::Goodbye, "Takk for at du ringte. Ha det bra."),
    (PromptKey::Connecting, "Vi setter deg over til en rådgiver."),
    (PromptKey::TransferFailed, "Beklager, vi fikk ikke satt deg over til en rådgiver."),
    (
        PromptKey::AgentsBusy,
        "Alle rådgiverne våre er opptatt. Trykk {agent_key} for å vente, eller {end_key} for å bli ringt opp.",
    ),
    (
        PromptKey::AgentsBusyNoCallback,
        "Alle rådgiverne våre er opptatt. Trykk {agent_key} for å vente, eller {end_key} for å avslutte.",
    ),
    (PromptKey::CallbackRequested, "Takk. Vi ringer deg opp. Ha det bra."),
    (
        PromptKey::BusyGoodbye,
        "Beklager, ingen rådgiver er ledig nå. Ring gjerne igjen senere. Ha det bra.",
    ),
    (PromptKey::StatusNew, "mottatt"),
    (PromptKey::StatusOpen, "under behandling"),
    (PromptKey::StatusPending, "venter på svar fra deg"),
    (PromptKey::StatusHold, "satt på vent"),
    (PromptKey::KeyStar, "stjerne"),
    (PromptKey::KeyPound, "firkant"),
];

/// A language code as the prompts are keyed (`en`, `nb`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Language(String);

impl Language {
    pub fn new(code: &str) -> Language {
        Language(code.trim().to_ascii_lowercase())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A template error, naming the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("ivr.prompts.{lang}.{key}: unknown sentence (known: {known})")]
    UnknownKey { lang: String, key: String, known: String },
    #[error(
        "ivr.prompts.{lang}.{key}: unknown placeholder {{{placeholder}}} (this sentence has: {allowed})"
    )]
    UnknownPlaceholder { lang: String, key: &'static str, placeholder: String, allowed: String },
    #[error("ivr.prompts.{lang}.{key}: unclosed or empty placeholder")]
    Malformed { lang: String, key: &'static str },
    #[error("ivr.default_language: no prompts for {0:?} (have: {1})")]
    NoDefaultLanguage(String, String),
}

/// The menu's keys, as the sentences name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MenuKeys {
    pub agent: char,
    pub end: char,
    pub repeat: char,
}

impl Default for MenuKeys {
    fn default() -> Self {
        MenuKeys { agent: '1', end: '2', repeat: '*' }
    }
}

/// Placeholders every sentence that has them gets filled from the menu's keys.
const KEY_PLACEHOLDERS: [&str; 3] = ["agent_key", "end_key", "repeat_key"];

/// Every language's sentences, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    languages: BTreeMap<Language, BTreeMap<PromptKey, String>>,
    default: Language,
    keys: MenuKeys,
}

impl Prompts {
    /// The built-in sentences, with `overrides` (`lang -> key -> template`) on top. A new
    /// language starts from the default language's sentences.
    pub fn new(
        default_language: &str,
        overrides: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Prompts, PromptError> {
        let mut languages = BTreeMap::new();
        for (code, table) in [("en", EN), ("nb", NB)] {
            let sentences = table.iter().map(|(k, v)| (*k, v.to_string())).collect();
            languages.insert(Language::new(code), sentences);
        }
        let default = Language::new(default_language);
        if !languages.contains_key(&default)
            && !overrides.keys().any(|l| Language::new(l) == default)
        {
            return Err(PromptError::NoDefaultLanguage(
                default.0.clone(),
                languages_list(&languages),
            ));
        }
        // The default language first: a new language starts from its sentences, as
        // overridden.
        let mut ordered: Vec<(&String, &BTreeMap<String, String>)> = overrides.iter().collect();
        ordered.sort_by_key(|(lang, _)| Language::new(lang) != default);
        for (lang, table) in ordered {
            let base = languages.get(&default).or_else(|| languages.get(&Language::new("en")));
            let base = base.cloned().unwrap_or_default();
            let sentences = languages.entry(Language::new(lang)).or_insert(base);
            for (name, template) in table {
                let Some(key) = PromptKey::from_name(name) else {
                    let known = PromptKey::ALL.map(PromptKey::name).join(", ");
                    return Err(PromptError::UnknownKey {
                        lang: lang.clone(),
                        key: name.clone(),
                        known,
                    });
                };
                check_template(lang, key, template)?;
                sentences.insert(key, template.clone());
            }
        }
        Ok(Prompts { languages, default, keys: MenuKeys::default() })
    }

    /// The sentences with the menu's keys as configured.
    pub fn with_keys(mut self, keys: MenuKeys) -> Prompts {
        self.keys = keys;
        self
    }

    pub fn default_language(&self) -> &Language {
        &self.default
    }

    /// Every language with prompts.
    pub fn languages(&self) -> impl Iterator<Item = &Language> {
        self.languages.keys()
    }

    /// The language for a Zendesk locale (`nb`, `no` and `nn` read as Norwegian Bokmål,
    /// `en-US` as English); the default for none, or one with no prompts.
    pub fn language_for(&self, locale: Option<&str>) -> Language {
        let Some(locale) = locale else { return self.default.clone() };
        let lower = locale.trim().to_ascii_lowercase().replace('_', "-");
        let primary = lower.split('-').next().unwrap_or("");
        let candidates =
            [lower.as_str(), if matches!(primary, "no" | "nn") { "nb" } else { primary }];
        candidates
            .into_iter()
            .map(Language::new)
            .find(|l| self.languages.contains_key(l))
            .unwrap_or_else(|| self.default.clone())
    }

    /// The template of `key` in `lang` (the default language's if `lang` has none).
    pub fn template(&self, lang: &Language, key: PromptKey) -> &str {
        self.languages
            .get(lang)
            .and_then(|s| s.get(&key))
            .or_else(|| self.languages.get(&self.default).and_then(|s| s.get(&key)))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `key` in `lang` with its placeholders filled in from `values` (and the menu's keys,
    /// said as words where they are not digits). Values are inserted as they are: clean
    /// untrusted text with [`clean_text`] first.
    pub fn render(&self, lang: &Language, key: PromptKey, values: &[(&str, &str)]) -> String {
        let said = |k: char| match k {
            '*' => self.template(lang, PromptKey::KeyStar).to_string(),
            '#' => self.template(lang, PromptKey::KeyPound).to_string(),
            k => k.to_string(),
        };
        let keys = [said(self.keys.agent), said(self.keys.end), said(self.keys.repeat)];
        let mut all: Vec<(&str, &str)> = values.to_vec();
        all.extend(KEY_PLACEHOLDERS.iter().zip(&keys).map(|(n, v)| (*n, v.as_str())));
        fill(self.template(lang, key), &all)
    }

    /// Every sentence that is the same for every caller (no placeholders but the menu's
    /// keys), in every language, as said: what is rendered at startup so no caller waits.
    pub fn static_sentences(&self) -> Vec<(Language, String)> {
        let mut out = Vec::new();
        for (lang, sentences) in &self.languages {
            for key in sentences.keys() {
                let fixed = key.placeholders().iter().all(|p| KEY_PLACEHOLDERS.contains(p));
                if fixed && !is_word(*key) {
                    out.push((lang.clone(), self.render(lang, *key, &[])));
                }
            }
        }
        out
    }
}

/// Words that are parts of sentences, not sentences.
fn is_word(key: PromptKey) -> bool {
    matches!(
        key,
        PromptKey::StatusNew
            | PromptKey::StatusOpen
            | PromptKey::StatusPending
            | PromptKey::StatusHold
            | PromptKey::KeyStar
            | PromptKey::KeyPound
    )
}

fn languages_list(languages: &BTreeMap<Language, BTreeMap<PromptKey, String>>) -> String {
    languages.keys().map(|l| l.0.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks that every `{name}` in `template` is one `key` has.
fn check_template(lang: &str, key: PromptKey, template: &str) -> Result<(), PromptError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close =
            after.find('}').ok_or(PromptError::Malformed { lang: lang.into(), key: key.name() })?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            // `{{ticketId}}` lands here as `{ticketId` or as an empty name.
            let placeholder = name.trim_start_matches('{').to_string();
            if placeholder.is_empty() {
                return Err(PromptError::Malformed { lang: lang.into(), key: key.name() });
            }
            return Err(unknown(lang, key, placeholder));
        }
        if !key.placeholders().contains(&name) {
            return Err(unknown(lang, key, name.to_string()));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(PromptError::Malformed { lang: lang.into(), key: key.name() });
    }
    Ok(())
}

fn unknown(lang: &str, key: PromptKey, placeholder: String) -> PromptError {
    let allowed = match key.placeholders() {
        [] => "none".to_string(),
        list => list.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", "),
    };
    PromptError::UnknownPlaceholder { lang: lang.into(), key: key.name(), placeholder, allowed }
}

/// Fills `{name}` placeholders in one pass (a value is never expanded again).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let name = &after[..close];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (close, *v))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Untrusted text (a ticket subject, a name) made safe to speak: markup and SSML tags
/// removed, control characters and the characters that start markup dropped, white space
/// folded, and the result cut at a word boundary to at most `max_chars` characters.
pub fn clean_text(raw: &str, max_chars: usize) -> String {
    let mut plain = String::with_capacity(raw.len().min(4096));
    let mut in_tag = false;
    for c in raw.chars().take(4096) {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if in_tag => {}
            c if c.is_control() => plain.push(' '),
            '>' | '&' | '{' | '}' | '[' | ']' | '\\' | '"' | '`' => plain.push(' '),
            c => plain.push(c),
        }
    }
    let words: Vec<&str> = plain.split_whitespace().collect();
    let mut out = String::new();
    for word in words {
        let extra = if out.is_empty() { 0 } else { 1 } + word.chars().count();
        if out.chars().count() + extra > max_chars {
            if out.is_empty() {
                out = word.chars().take(max_chars).collect();
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A ticket id read digit by digit ("4 2 1"), so TTS does not say "four hundred and
/// twenty-one".
pub fn digit_by_digit(id: u64) -> String {
    let digits = id.to_string();
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(d);
    }
    out
}

/// A phone number read digit by digit ("+47 98" → "4 7 9 8"): only its digits.
pub fn digit_by_digit_text(number: &str) -> String {
    let digits: Vec<String> =
        number.chars().filter(char::is_ascii_digit).map(String::from).collect();
    digits.join(" ")
}

/// The first word of a display name ("Kari Nordmann" → "Kari"), cleaned.
pub fn first_name(name: &str) -> String {
    let cleaned = clean_text(name, 40);
    cleaned.split_whitespace().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests;

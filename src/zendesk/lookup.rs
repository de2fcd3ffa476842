//! The dry run behind `zendesk-ivr lookup NUMBER`: normalise the number, run the data dip as
//! a call would, and report what was found.

use std::time::Instant;

use serde::Serialize;

use super::client::{ClientError, ZendeskClient};
use super::model::DipOutcome;
use crate::config::{Config, ConfigError};
use crate::ivr::flow::{Caller, Flow, FlowSettings, Sentence};
use crate::ivr::routing::Route;
use crate::phone::{PhoneNumber, normalise};

/// Why a lookup could not run.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What a lookup found, for printing as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LookupReport {
    pub input: String,
    /// The number as searched, or `None` when the input is not a usable number.
    pub number: Option<PhoneNumber>,
    /// Why the input is not a usable number (the dip then treats the caller as anonymous).
    pub number_error: Option<String>,
    pub outcome: DipOutcome,
    /// The status sentence the caller would hear, in their language (as text: TTS
    /// renders exactly this).
    pub sentence: Sentence,
    /// The agent queue and targets a key press for an agent would go to.
    pub route: Route,
    pub elapsed_ms: u64,
    pub deadline_ms: u64,
}

/// Runs one data dip for `raw` with the configured client.
pub async fn lookup(config: &Config, raw: &str) -> Result<LookupReport, LookupError> {
    let client = ZendeskClient::from_config(&config.zendesk)?;
    // The TTS deadline plays no part in a dry run.
    let settings = FlowSettings::from_config(config, std::time::Duration::ZERO)?;
    let router = settings.router.clone();
    let (number, number_error) = match normalise(raw, &config.sip.default_region) {
        Ok(number) => (Some(number), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let started = Instant::now();
    let outcome = client.data_dip(number.as_ref()).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let route = router.route(&outcome);
    let caller = Caller { number: number.as_ref().map(|n| n.e164.clone()) };
    let sentence = Flow::new(started, caller, settings).preview_status(&outcome);
    Ok(LookupReport {
        input: raw.to_string(),
        number,
        number_error,
        outcome,
        sentence,
        route,
        elapsed_ms,
        deadline_ms: config.zendesk.deadline_ms,
    })
}

impl LookupReport {
    /// A human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        match (&self.number, &self.number_error) {
            (Some(n), _) => line(format!(
                "number:   {} (national {}, region {})",
                n.e164,
                n.national,
                n.region.as_deref().unwrap_or("?")
            )),
            (None, Some(err)) => line(format!("number:   {:?} is not usable: {err}", self.input)),
            (None, None) => line(format!("number:   {:?}", self.input)),
        }
        match &self.outcome {
            DipOutcome::Found { user, ticket, greet_by_name } => {
                line(format!(
                    "user:     #{} {} (locale {}, role {}){}",
                    user.id,
                    user.name,
                    user.locale.as_deref().unwrap_or("?"),
                    user.role.as_deref().unwrap_or("?"),
                    if *greet_by_name { "" } else { ", not greeted by name (shared number)" }
                ));
                match ticket {
                    Some(t) => line(format!(
                        "ticket:   #{} {:?} status {} priority {} updated {} tags [{}]",
                        t.id,
                        t.subject.as_deref().unwrap_or(""),
                        t.status.as_str(),
                        t.priority.map(|p| p.as_str()).unwrap_or("none"),
                        t.updated_at.as_deref().unwrap_or("?"),
                        t.tags.join(", ")
                    )),
                    None => line("ticket:   no unsolved ticket".into()),
                }
            }
            DipOutcome::UnknownCaller => line("user:     none with this number".into()),
            DipOutcome::Anonymous => line("user:     anonymous caller, lookup skipped".into()),
            DipOutcome::Fallback { reason } => line(format!("fallback: {reason:?}")),
        }
        line(format!("language: {}", self.sentence.lang));
        line(format!("says:     {}", self.sentence.text));
        line(format!("route:    {} queue → {}", self.route.queue, self.route.targets.join(", ")));
        line(format!("time:     {} ms (deadline {} ms)", self.elapsed_ms, self.deadline_ms));
        out
    }
}

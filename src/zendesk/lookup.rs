//! The dry run behind `zendesk-ivr lookup NUMBER`: normalise the number, run the data dip as
//! a call would, and report what was found.

use std::time::Instant;

use serde::Serialize;

use super::client::{ClientError, DipOutcome, ZendeskClient};
use super::phone::{PhoneNumber, normalise};
use crate::config::Config;
use crate::ivr::routing::{self, Route};

/// What a lookup found, for printing as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LookupReport {
    pub input: String,
    /// The number as searched, or `None` when the input is not a usable number.
    pub number: Option<PhoneNumber>,
    /// Why the input is not a usable number (the dip then treats the caller as anonymous).
    pub number_error: Option<String>,
    pub outcome: DipOutcome,
    /// The agent queue the call would go to.
    pub route: Route,
    pub elapsed_ms: u64,
    pub deadline_ms: u64,
}

/// Runs one data dip for `raw` with the configured client.
pub async fn lookup(config: &Config, raw: &str) -> Result<LookupReport, ClientError> {
    let client = ZendeskClient::from_config(&config.zendesk)?;
    let (number, number_error) = match normalise(raw, &config.sip.default_region) {
        Ok(number) => (Some(number), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let started = Instant::now();
    let outcome = client.data_dip(number.as_ref()).await;
    let route = routing::route(&outcome, &config.routing);
    Ok(LookupReport {
        input: raw.to_string(),
        number,
        number_error,
        outcome,
        route,
        elapsed_ms: started.elapsed().as_millis() as u64,
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
        line(format!("route:    {} ({:?})", self.route.queue, self.route.reason));
        line(format!("time:     {} ms (deadline {} ms)", self.elapsed_ms, self.deadline_ms));
        out
    }
}

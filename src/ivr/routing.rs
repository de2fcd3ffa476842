//! Which queue, and which targets, an agent call goes to (sans-IO).
//!
//! `[[routing.rules]]` are checked in order; the first whose conditions all hold (ticket
//! priority, status, tags, the caller kind) names the queue. A queue is an ordered list of
//! SIP targets. Without rules, the shorthand of `routing.default_queue` and
//! `routing.priority_queue` applies: urgent and high tickets go to `priority`, everyone
//! else to `default`. Routing needs no Zendesk data: a dip that fell back still routes, by
//! its caller kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::ivr::config::{QueueConfig, RoutingConfig, RuleConfig};
use crate::zendesk::model::{DipOutcome, Priority, Ticket};

/// The queue every unmatched call goes to.
pub const DEFAULT_QUEUE: &str = "default";
/// The shorthand queue for urgent and high tickets.
pub const PRIORITY_QUEUE: &str = "priority";

/// What the dip made of the caller, as routing rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerKind {
    /// A Zendesk user was found.
    Known,
    /// No user has this number.
    Unknown,
    /// No usable caller ID.
    Anonymous,
    /// Zendesk did not answer in time (or at all).
    Fallback,
}

impl CallerKind {
    pub fn of(outcome: &DipOutcome) -> CallerKind {
        match outcome {
            DipOutcome::Found { .. } => CallerKind::Known,
            DipOutcome::UnknownCaller => CallerKind::Unknown,
            DipOutcome::Anonymous => CallerKind::Anonymous,
            DipOutcome::Fallback { .. } => CallerKind::Fallback,
        }
    }
}

/// Why a queue was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouteReason {
    /// `[[routing.rules]]` number `index` (from 0) matched.
    Rule { index: usize },
    /// The shorthand: the ticket is urgent or high.
    PriorityTicket,
    /// Nothing matched.
    Default,
}

/// Where an agent call goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub queue: String,
    /// Tried in order.
    pub targets: Vec<String>,
    /// The queue's priority value, for the `X-Zendesk-Queue-Priority` header.
    pub queue_priority: Option<u8>,
    pub reason: RouteReason,
    /// The ticket's priority, for the call's path ("urgent ticket → priority").
    pub ticket_priority: Option<Priority>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    config: RuleConfig,
}

impl Rule {
    fn matches(&self, kind: CallerKind, ticket: Option<&Ticket>) -> bool {
        let c = &self.config;
        let priority = ticket.and_then(|t| t.priority);
        (c.caller.is_empty() || c.caller.contains(&kind))
            && (c.priority.is_empty() || priority.is_some_and(|p| c.priority.contains(&p)))
            && (c.status.is_empty() || ticket.is_some_and(|t| c.status.contains(&t.status)))
            && (c.tags.is_empty()
                || ticket.is_some_and(|t| t.tags.iter().any(|tag| c.tags.contains(tag))))
    }
}

/// The routing table, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    rules: Vec<Rule>,
    queues: BTreeMap<String, QueueConfig>,
    /// No rules were configured: the built-in priority rule stands in.
    shorthand: bool,
}

impl Router {
    pub fn from_config(config: &RoutingConfig) -> Result<Router, ConfigError> {
        for (key, uri) in [
            ("routing.default_queue", &config.default_queue),
            ("routing.priority_queue", &config.priority_queue),
        ] {
            if !is_sip_uri(uri) {
                return Err(ConfigError::Key { key, reason: format!("{uri:?} is not a SIP URI") });
            }
        }
        let mut queues = config.queues.clone();
        for (name, uri) in
            [(DEFAULT_QUEUE, &config.default_queue), (PRIORITY_QUEUE, &config.priority_queue)]
        {
            queues
                .entry(name.to_string())
                .or_insert_with(|| QueueConfig { targets: vec![uri.clone()], priority: None });
        }
        for (name, queue) in &queues {
            if queue.targets.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "routing.queues.{name}.targets: a queue needs at least one target"
                )));
            }
            if let Some(bad) = queue.targets.iter().find(|t| !is_sip_uri(t)) {
                return Err(ConfigError::Invalid(format!(
                    "routing.queues.{name}.targets: {bad:?} is not a SIP URI"
                )));
            }
        }
        let rules = if config.rules.is_empty() {
            vec![Rule {
                config: RuleConfig {
                    priority: vec![Priority::Urgent, Priority::High],
                    queue: PRIORITY_QUEUE.into(),
                    ..RuleConfig::default()
                },
            }]
        } else {
            config.rules.iter().map(|c| Rule { config: c.clone() }).collect()
        };
        for (i, rule) in config.rules.iter().enumerate() {
            if !queues.contains_key(&rule.queue) {
                let known: Vec<&str> = queues.keys().map(String::as_str).collect();
                return Err(ConfigError::Invalid(format!(
                    "routing.rules[{i}].queue: no queue {:?} (known: {})",
                    rule.queue,
                    known.join(", ")
                )));
            }
        }
        Ok(Router { rules, queues, shorthand: config.rules.is_empty() })
    }

    /// Every target of every queue (for probing and checks).
    pub fn targets(&self) -> impl Iterator<Item = &String> {
        let mut all: Vec<&String> = self.queues.values().flat_map(|q| &q.targets).collect();
        all.sort();
        all.dedup();
        all.into_iter()
    }

    /// The route for a caller.
    pub fn route(&self, outcome: &DipOutcome) -> Route {
        let kind = CallerKind::of(outcome);
        let ticket = match outcome {
            DipOutcome::Found { ticket, .. } => ticket.as_ref(),
            _ => None,
        };
        let (queue, reason) = match self.rules.iter().position(|r| r.matches(kind, ticket)) {
            Some(index) if !self.shorthand => {
                (self.rules[index].config.queue.as_str(), RouteReason::Rule { index })
            }
            Some(_) => (PRIORITY_QUEUE, RouteReason::PriorityTicket),
            None => (DEFAULT_QUEUE, RouteReason::Default),
        };
        let config = &self.queues[queue];
        Route {
            queue: queue.to_string(),
            targets: config.targets.clone(),
            queue_priority: config.priority,
            reason,
            ticket_priority: ticket.and_then(|t| t.priority),
        }
    }
}

fn is_sip_uri(uri: &str) -> bool {
    uri.starts_with("sip:") || uri.starts_with("sips:")
}

#[cfg(test)]
mod tests;

//! Which queue an agent call goes to, from what the data dip found (sans-IO).
//!
//! Callers whose latest unsolved ticket is urgent or high go to `routing.priority_queue`;
//! everyone else, including callers the dip could not identify in time, goes to
//! `routing.default_queue`.

use serde::Serialize;

use crate::config::RoutingConfig;
use crate::zendesk::client::DipOutcome;
use crate::zendesk::model::Priority;

/// Why a queue was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// The caller's ticket is urgent or high.
    PriorityTicket,
    /// A known caller whose ticket (if any) is normal or low.
    Standard,
    /// Nobody was found, or the caller is anonymous.
    UnknownCaller,
    /// The dip failed or ran out of time: the caller goes to an agent anyway.
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub queue: String,
    pub reason: RouteReason,
}

/// The queue for a caller.
pub fn route(outcome: &DipOutcome, routing: &RoutingConfig) -> Route {
    let (queue, reason) = match outcome {
        DipOutcome::Found { ticket: Some(ticket), .. }
            if matches!(ticket.priority, Some(Priority::Urgent | Priority::High)) =>
        {
            (&routing.priority_queue, RouteReason::PriorityTicket)
        }
        DipOutcome::Found { .. } => (&routing.default_queue, RouteReason::Standard),
        DipOutcome::UnknownCaller | DipOutcome::Anonymous => {
            (&routing.default_queue, RouteReason::UnknownCaller)
        }
        DipOutcome::Fallback { .. } => (&routing.default_queue, RouteReason::Fallback),
    };
    Route { queue: queue.clone(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendesk::client::FallbackReason;
    use crate::zendesk::model::{Ticket, User};

    fn found(priority: Option<Priority>) -> DipOutcome {
        let user: User = serde_json::from_str(r#"{"id": 1, "name": "Kari"}"#).unwrap();
        let mut ticket: Ticket =
            serde_json::from_str(r#"{"id": 7, "status": "open", "requester_id": 1}"#).unwrap();
        ticket.priority = priority;
        DipOutcome::Found { user, ticket: Some(ticket), greet_by_name: true }
    }

    #[test]
    fn urgent_and_high_tickets_go_to_the_priority_queue() {
        let routing = RoutingConfig::default();
        for p in [Priority::Urgent, Priority::High] {
            let r = route(&found(Some(p)), &routing);
            assert_eq!(
                r,
                Route {
                    queue: routing.priority_queue.clone(),
                    reason: RouteReason::PriorityTicket
                }
            );
        }
    }

    #[test]
    fn everyone_else_goes_to_the_default_queue() {
        let routing = RoutingConfig::default();
        for (outcome, reason) in [
            (found(Some(Priority::Normal)), RouteReason::Standard),
            (found(Some(Priority::Low)), RouteReason::Standard),
            (found(None), RouteReason::Standard),
            (DipOutcome::UnknownCaller, RouteReason::UnknownCaller),
            (DipOutcome::Anonymous, RouteReason::UnknownCaller),
            (DipOutcome::Fallback { reason: FallbackReason::Deadline }, RouteReason::Fallback),
        ] {
            let r = route(&outcome, &routing);
            assert_eq!(r, Route { queue: routing.default_queue.clone(), reason });
        }
    }
}

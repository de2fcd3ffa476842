//! Transferring a call to an agent (runtime layer), as the IVR flow asks.
//!
//! Two ways, chosen by `transfer.mode` (the flow decides which, per attempt):
//! - **REFER**: we ask the caller's phone to call the target (RFC 3515), with the ticket
//!   and user ids as URI headers in Refer-To ([`refer_target`]), and feed the progress
//!   NOTIFYs to the flow.
//! - **Bridge**: we call the target ourselves while the caller hears hold music, then
//!   relay RTP between the two legs ([`bridge::AgentLeg`]); the agent's INVITE carries
//!   the caller's number and the ticket ([`agent_headers`]).
//!
//! Targets come only from `[routing]`: nothing a caller sends names one. Established
//! calls register a control channel by Call-ID ([`CallRegistry`]) so the server can hang
//! them up at the end of a drain.

pub mod bridge;
pub mod probe;

use std::collections::HashMap;

use tokio::sync::{mpsc, watch};

use crate::sip::refer::{self, TargetError};

/// Requests queued for one call before more are refused.
pub const CONTROL_QUEUE: usize = 8;

/// A request to a running call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallControl {
    /// Hang up now (the server is shutting down); the comment still goes to the outbox.
    Hangup,
}

/// Checks a transfer target (the same rule as Refer-To).
pub fn check_target(target: &str) -> Result<(), TargetError> {
    refer::refer_to(target)?;
    Ok(())
}

/// The Refer-To target for a REFER: `target` with the ticket and user ids as URI
/// headers (`?X-Zendesk-Ticket-Id=102&X-Zendesk-User-Id=11`). The ids are numbers, so
/// nothing needs escaping; `refer_to` escapes the rest.
pub fn refer_target(target: &str, ticket_id: Option<u64>, user_id: Option<u64>) -> String {
    let mut headers = Vec::new();
    if let Some(id) = ticket_id {
        headers.push(format!("X-Zendesk-Ticket-Id={id}"));
    }
    if let Some(id) = user_id {
        headers.push(format!("X-Zendesk-User-Id={id}"));
    }
    if headers.is_empty() {
        return target.to_string();
    }
    let separator = if target.contains('?') { '&' } else { '?' };
    format!("{target}{separator}{}", headers.join("&"))
}

/// The extra headers on an agent leg's INVITE: the caller's number as
/// P-Asserted-Identity, the ids, the queue priority, and a Call-Info link to the ticket for
/// screen-pops. Every value is built from digits, an E.164 number and config, never from
/// ticket text.
pub fn agent_headers(
    caller_e164: Option<&str>,
    host: &str,
    zendesk_url: &str,
    ticket_id: Option<u64>,
    user_id: Option<u64>,
    queue_priority: Option<u8>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(number) = caller_e164.filter(|n| is_e164(n)) {
        headers.push(("P-Asserted-Identity".into(), format!("<sip:{number}@{host};user=phone>")));
    }
    if let Some(id) = ticket_id {
        headers.push(("X-Zendesk-Ticket-Id".into(), id.to_string()));
        let base = zendesk_url.trim_end_matches('/');
        if !base.contains(['<', '>', '"', ' ']) {
            headers.push(("Call-Info".into(), format!("<{base}/agent/tickets/{id}>;purpose=info")));
        }
    }
    if let Some(id) = user_id {
        headers.push(("X-Zendesk-User-Id".into(), id.to_string()));
    }
    if let Some(priority) = queue_priority {
        headers.push(("X-Zendesk-Queue-Priority".into(), priority.to_string()));
    }
    headers
}

fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| !d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit()))
}

type Controls = HashMap<String, mpsc::Sender<CallControl>>;

/// The established calls' control channels, by Call-ID; cheap to clone.
#[derive(Clone)]
pub struct CallRegistry {
    calls: watch::Sender<Controls>,
}

impl Default for CallRegistry {
    fn default() -> Self {
        CallRegistry { calls: watch::Sender::new(HashMap::new()) }
    }
}

/// Keeps a call registered; dropping it removes the call (if it is still this one).
pub struct Registration {
    registry: CallRegistry,
    call_id: String,
    control: mpsc::Sender<CallControl>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.calls.send_if_modified(|calls| {
            let ours = calls.get(&self.call_id).is_some_and(|tx| tx.same_channel(&self.control));
            if ours {
                calls.remove(&self.call_id);
            }
            ours
        });
    }
}

impl CallRegistry {
    /// Registers a call's control channel under its Call-ID (a later call with the same
    /// Call-ID replaces it).
    pub fn register(&self, call_id: &str, control: mpsc::Sender<CallControl>) -> Registration {
        self.calls.send_modify(|calls| {
            calls.insert(call_id.to_string(), control.clone());
        });
        Registration { registry: self.clone(), call_id: call_id.to_string(), control }
    }

    /// Call-IDs of the established calls.
    pub fn call_ids(&self) -> Vec<String> {
        self.calls.borrow().keys().cloned().collect()
    }

    /// Waits until a call with this Call-ID is established (bound it with a timeout).
    pub async fn wait_for(&self, call_id: &str) {
        let mut rx = self.calls.subscribe();
        let _ = rx.wait_for(|calls| calls.contains_key(call_id)).await;
    }

    /// Asks every established call to hang up; returns how many were asked.
    pub fn hang_up_all(&self) -> usize {
        let controls: Vec<_> = self.calls.borrow().values().cloned().collect();
        controls.iter().filter(|c| c.try_send(CallControl::Hangup).is_ok()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_targets_carry_the_ids_as_uri_headers() {
        assert_eq!(
            refer_target("sip:priority@10.0.0.2", Some(102), Some(11)),
            "sip:priority@10.0.0.2?X-Zendesk-Ticket-Id=102&X-Zendesk-User-Id=11"
        );
        assert_eq!(refer_target("sip:q@h?A=b", Some(1), None), "sip:q@h?A=b&X-Zendesk-Ticket-Id=1");
        assert_eq!(refer_target("sip:q@h", None, None), "sip:q@h");
        // Escaped as a whole by refer_to: the brackets cannot be closed early.
        let value = refer::refer_to(&refer_target("sip:q@h", Some(5), None)).unwrap();
        assert_eq!(value, "<sip:q@h?X-Zendesk-Ticket-Id=5>");
    }

    #[test]
    fn agent_headers_are_built_from_numbers_and_config_only() {
        let headers = agent_headers(
            Some("+4798765432"),
            "10.0.0.1",
            "https://acme.zendesk.com/",
            Some(102),
            Some(11),
            Some(9),
        );
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("P-Asserted-Identity"), Some("<sip:+4798765432@10.0.0.1;user=phone>"));
        assert_eq!(get("X-Zendesk-Ticket-Id"), Some("102"));
        assert_eq!(get("X-Zendesk-User-Id"), Some("11"));
        assert_eq!(
            get("Call-Info"),
            Some("<https://acme.zendesk.com/agent/tickets/102>;purpose=info")
        );
        assert_eq!(get("X-Zendesk-Queue-Priority"), Some("9"));
        // A caller ID that is not a clean E.164 number is not asserted.
        let headers = agent_headers(Some("+47\r\nVia: x"), "h", "https://x", None, None, None);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[tokio::test]
    async fn registry_tracks_calls_and_hangs_them_up() {
        let registry = CallRegistry::default();
        let (tx, mut rx) = mpsc::channel(CONTROL_QUEUE);
        let registration = registry.register("abc@host", tx);
        registry.wait_for("abc@host").await;
        assert_eq!(registry.hang_up_all(), 1);
        assert_eq!(rx.recv().await, Some(CallControl::Hangup));
        // A newer call with the same Call-ID is not removed by the older one's end.
        let (tx2, _rx2) = mpsc::channel(CONTROL_QUEUE);
        let newer = registry.register("abc@host", tx2);
        drop(registration);
        assert_eq!(registry.call_ids(), vec!["abc@host".to_string()]);
        drop(newer);
        assert!(registry.call_ids().is_empty());
    }
}

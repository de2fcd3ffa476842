//! The post-call comment: a configurable template (`zendesk.comment_template`) filled in from
//! a call summary. The body always carries the call-id marker (`[call-id: ...]`) that the
//! outbox uses to detect a comment that was already posted.

use std::time::Duration;

use serde::Serialize;

/// The default template. Placeholders: `{caller}`, `{time}`, `{path}`, `{outcome}`,
/// `{queue}`, `{duration}`, `{ivr_duration}`, `{call_id}`.
pub const DEFAULT_TEMPLATE: &str = "Phone call from {caller} at {time}.\n\
Menu path: {path}\n\
Outcome: {outcome}\n\
Queue: {queue}\n\
Duration: {duration} (in the menu: {ivr_duration})\n\
[call-id: {call_id}]";

/// Longest comment body produced, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub use crate::ivr::outcome::CallOutcome;

/// What the comment says about one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallSummary {
    /// Unique per call (the SIP Call-ID or our own id).
    pub call_id: String,
    /// E.164, or `None` for an anonymous caller.
    pub caller: Option<String>,
    /// When the call started, RFC 3339.
    pub started_at: String,
    /// What happened in the IVR, in order ("status heard, pressed 1, ...").
    pub path: String,
    pub outcome: CallOutcome,
    /// The queue the call was routed to, if any.
    pub queue: Option<String>,
    pub duration: Duration,
    pub ivr_duration: Duration,
}

/// `[call-id: ID]`, with characters that could break the marker removed from the id.
pub fn call_id_marker(call_id: &str) -> String {
    format!("[call-id: {}]", marker_safe(call_id))
}

fn marker_safe(call_id: &str) -> String {
    call_id.chars().filter(|c| !c.is_control() && !matches!(c, '[' | ']')).take(256).collect()
}

fn seconds(d: Duration) -> String {
    let total = d.as_secs();
    if total >= 60 { format!("{}m {:02}s", total / 60, total % 60) } else { format!("{total}s") }
}

/// Fills in `template`. Unknown placeholders are left as they are. If the template lost the
/// call-id marker, it is appended, so duplicate detection always works.
pub fn render(template: &str, call: &CallSummary) -> String {
    let queue = call.queue.as_deref().unwrap_or("-");
    let path = if call.path.is_empty() { "-".to_string() } else { call.path.clone() };
    let values = [
        ("{caller}", call.caller.clone().unwrap_or_else(|| "anonymous".into())),
        ("{time}", call.started_at.clone()),
        ("{path}", path),
        ("{outcome}", call.outcome.to_string()),
        ("{queue}", queue.to_string()),
        ("{duration}", seconds(call.duration)),
        ("{ivr_duration}", seconds(call.ivr_duration)),
        ("{call_id}", marker_safe(&call.call_id)),
    ];
    // One pass over the template, so values are never themselves expanded.
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match values.iter().find(|(name, _)| tail.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    let marker = call_id_marker(&call.call_id);
    if out.len() + marker.len() + 1 > MAX_BODY_BYTES {
        let mut cut = MAX_BODY_BYTES.saturating_sub(marker.len() + 1);
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if !out.contains(&marker) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&marker);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallSummary {
        CallSummary {
            call_id: "a84b4c76e66710@pc33".into(),
            caller: Some("+4798765432".into()),
            started_at: "2024-05-10T08:00:00Z".into(),
            path: "status heard, pressed 1".into(),
            outcome: CallOutcome::Transferred {
                queue: "priority".into(),
                target: "sip:priority@pbx".into(),
                mode: crate::config::TransferMode::Refer,
            },
            queue: Some("priority".into()),
            duration: Duration::from_secs(95),
            ivr_duration: Duration::from_secs(21),
        }
    }

    #[test]
    fn default_template_lists_everything() {
        let body = render(DEFAULT_TEMPLATE, &call());
        assert_eq!(
            body,
            "Phone call from +4798765432 at 2024-05-10T08:00:00Z.\nMenu path: status heard, pressed 1\n\
             Outcome: transferred to the priority queue (sip:priority@pbx)\nQueue: priority\n\
             Duration: 1m 35s (in the menu: 21s)\n[call-id: a84b4c76e66710@pc33]"
        );
    }

    #[test]
    fn the_marker_is_always_there() {
        let body = render(
            "Call {outcome}",
            &CallSummary { outcome: CallOutcome::EndedByCaller, ..call() },
        );
        assert_eq!(
            body,
            "Call the caller ended the call from the menu\n[call-id: a84b4c76e66710@pc33]"
        );
        let long = render(&"x".repeat(100_000), &call());
        assert!(long.len() <= MAX_BODY_BYTES);
        assert!(long.ends_with("[call-id: a84b4c76e66710@pc33]"));
        // A hostile id cannot close the marker early or add lines.
        let odd = CallSummary { call_id: "a]\r\nb[".into(), ..call() };
        assert!(render("{call_id}", &odd).ends_with("[call-id: ab]"));
    }

    #[test]
    fn values_are_not_expanded_again_and_unknown_placeholders_stay() {
        let sneaky = CallSummary { path: "{call_id}".into(), caller: None, ..call() };
        let body = render("{path} {caller} {unknown} {", &sneaky);
        assert!(body.starts_with("{call_id} anonymous {unknown} {\n[call-id:"), "{body}");
    }
}

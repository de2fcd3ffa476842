//! The status page's HTML: rendered on the server from a [`StatusSnapshot`], with no
//! script; a `<meta http-equiv="refresh">` reloads it. Every text that came from a caller
//! or from Zendesk goes through [`text`]: HTML-escaped, with control characters shown as
//! `\r`, `\n` or `\u{…}` so a CR LF in a display name is seen, not obeyed.

use std::fmt::Write;

use crate::status::StatusSnapshot;
use crate::status::board::TicketBrief;

/// Seconds between reloads.
pub const REFRESH_S: u32 = 5;

/// The whole page.
pub fn render(s: &StatusSnapshot) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\
         <title>zendesk-ivr status</title><style>{STYLE}</style></head><body>\
         <h1>zendesk-ivr</h1><p class=\"state\">{} · {} active · {} finished shown · \
         refreshes every {REFRESH_S} s</p>",
        if s.draining { "<b>draining</b>: no new calls" } else { "taking calls" },
        s.calls.active.len(),
        s.calls.finished.len(),
    );
    active_calls(&mut page, s);
    services(&mut page, s);
    finished_calls(&mut page, s);
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em;min-width:40em}\
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.up{color:#070}.down{color:#b00}.state{color:#555}\
.empty{color:#888;font-style:italic}.grid{display:flex;gap:2em;flex-wrap:wrap}\
.grid table{min-width:14em}\
code{font-size:12px}";

fn active_calls(page: &mut String, s: &StatusSnapshot) {
    page.push_str("<h2>Active calls</h2>");
    if s.calls.active.is_empty() {
        page.push_str("<p class=\"empty\">No calls in progress.</p>");
        return;
    }
    page.push_str(
        "<table><tr><th>Caller</th><th>Name</th><th>Ticket</th><th>Step</th>\
         <th>Duration</th><th>Call-ID</th></tr>",
    );
    for call in &s.calls.active {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            text(&call.caller),
            call.display_name.as_deref().map(text).unwrap_or_default(),
            ticket(call.ticket.as_ref()),
            call.step,
            duration(Some(call.duration_s)),
            text(&call.call_id),
        );
    }
    page.push_str("</table>");
}

fn services(page: &mut String, s: &StatusSnapshot) {
    page.push_str("<div class=\"grid\"><div><h2>Outbox</h2>");
    match &s.outbox {
        Some(o) => {
            let _ = write!(
                page,
                "<table><tr><th>Waiting</th><td>{}</td></tr><tr><th>Dead letters</th><td>{}</td></tr>\
                 <tr><th>Oldest waiting</th><td>{}</td></tr></table>",
                o.pending,
                o.dead_letters,
                o.oldest_pending_s.map_or("none".into(), |s| duration(Some(s))),
            );
        }
        None => page.push_str("<p class=\"empty\">No outbox (Zendesk disabled).</p>"),
    }
    page.push_str("</div><div><h2>Transfer targets</h2>");
    if s.targets.is_empty() {
        page.push_str("<p class=\"empty\">Not probed (routing.probe_interval_s).</p>");
    } else {
        page.push_str("<table><tr><th>Target</th><th>Probe</th></tr>");
        for t in &s.targets {
            let (class, word) = if t.up { ("up", "up") } else { ("down", "down") };
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"{class}\">{word}</td></tr>",
                text(&t.target)
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</div><div><h2>Registrations</h2>");
    if s.registrations.is_empty() {
        page.push_str("<p class=\"empty\">No trunk registrations.</p>");
    } else {
        page.push_str("<table><tr><th>Registration</th><th>State</th><th>Detail</th></tr>");
        for r in &s.registrations {
            let (class, word) =
                if r.registered { ("up", "registered") } else { ("down", "not registered") };
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
                text(&r.name),
                text(&r.detail)
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</div></div>");
}

fn finished_calls(page: &mut String, s: &StatusSnapshot) {
    page.push_str("<h2>Last calls</h2>");
    if s.calls.finished.is_empty() {
        page.push_str("<p class=\"empty\">No finished calls yet.</p>");
        return;
    }
    page.push_str(
        "<table><tr><th>Caller</th><th>Name</th><th>Ticket</th><th>Outcome</th><th>Path</th>\
         <th>Route</th><th>Call</th><th>IVR</th><th>Wait</th><th>Talk</th><th>Call-ID</th></tr>",
    );
    for call in &s.calls.finished {
        let outcome = match (&call.outcome_text, call.answered) {
            (Some(words), _) => text(words),
            (None, false) => "not answered".into(),
            (None, true) => String::new(),
        };
        let path: Vec<String> = call.path.iter().map(|step| text(step)).collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{outcome}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            text(&call.caller),
            call.display_name.as_deref().map(text).unwrap_or_default(),
            ticket(call.ticket.as_ref()),
            path.join(" → "),
            call.route.as_deref().map(text).unwrap_or_default(),
            duration(Some(call.duration_s)),
            duration(call.ivr_s),
            duration(call.wait_s),
            duration(call.talk_s),
            text(&call.call_id),
        );
    }
    page.push_str("</table>");
}

fn ticket(t: Option<&TicketBrief>) -> String {
    match t {
        Some(t) => format!(
            "#{} {} <span class=\"state\">({})</span>",
            t.id,
            t.subject.as_deref().map(text).unwrap_or_default(),
            text(&t.status)
        ),
        None => String::new(),
    }
}

fn duration(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s >= 60.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!("{s:.1}s"),
        None => String::new(),
    }
}

/// Untrusted text made safe for HTML: control characters made visible, then `& < > " ' /`
/// escaped.
pub fn text(untrusted: &str) -> String {
    let mut visible = String::with_capacity(untrusted.len());
    for c in untrusted.chars() {
        match c {
            '\r' => visible.push_str("\\r"),
            '\n' => visible.push_str("\\n"),
            '\t' => visible.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(visible, "\\u{{{:x}}}", c as u32);
            }
            c => visible.push(c),
        }
    }
    html_escape::encode_safe(&visible).into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sip::ani::CallerId;
    use crate::status::{CallBoard, OutboxStatus, RegistrationStatus, TargetStatus};

    fn snapshot(board: &CallBoard) -> StatusSnapshot {
        StatusSnapshot {
            draining: false,
            calls: board.snapshot(Instant::now()),
            outbox: Some(OutboxStatus { pending: 3, dead_letters: 1, oldest_pending_s: Some(7.0) }),
            targets: vec![TargetStatus { target: "sip:agent@10.0.0.1".into(), up: false }],
            registrations: vec![RegistrationStatus {
                name: "trunk".into(),
                registered: true,
                detail: "<b>ok</b>".into(),
            }],
        }
    }

    #[test]
    fn hostile_text_is_escaped_and_control_characters_shown() {
        let board = CallBoard::default();
        let hostile = "<script>alert(1)</script>\r\nVia: evil";
        let _entry = board.begin("c1", &CallerId::NotANumber(hostile.into()), Some(hostile));
        let page = render(&snapshot(&board));
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\r\nVia"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;\\r\\nVia: evil"));
        assert!(page.contains("&lt;b&gt;ok&lt;&#x2F;b&gt;"), "a registration detail is escaped");
    }

    #[test]
    fn the_page_refreshes_itself_and_shows_every_section() {
        let board = CallBoard::default();
        let _entry = board.begin("c1", &CallerId::Anonymous, None);
        let page = render(&snapshot(&board));
        assert!(page.contains("http-equiv=\"refresh\""));
        assert!(!page.contains("<script"), "no script at all");
        for needle in ["Active calls", "anonymous", "ringing", "Waiting</th><td>3", "down"] {
            assert!(page.contains(needle), "{needle} missing: {page}");
        }
        assert!(page.contains("No finished calls yet."));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Some(4.31)), "4.3s");
        assert_eq!(duration(Some(125.0)), "2m05s");
        assert_eq!(duration(None), "");
    }
}

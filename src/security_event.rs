//! Security events: one log line each, in a fixed form that `config/fail2ban/` matches.
//!
//! The form is `SECURITY <kind> src=<ip> <detail>`, logged at WARN with the target
//! `zendesk_ivr::security`. The message text is the same in the human-readable and the JSON
//! log format, so one filter reads both (journald or a file). `<kind>` is one of the fixed
//! words of [`SecurityEvent::as_str`]; `<detail>` is quoted and escaped, because it may hold
//! text a scanner chose (a User-Agent, a user name), and must never be able to forge a
//! second `src=`.

use std::fmt;
use std::net::IpAddr;

/// What happened. The words are part of the fail2ban filter's contract: do not rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEvent {
    /// Digest credentials that did not verify (wrong password, unknown user, stale replay).
    BadAuth,
    /// A source went over a rate limit; logged once per interval per source.
    RateLimited,
    /// A request whose User-Agent belongs to a known scanner (SIPVicious, sipsak floods…).
    Scanner,
    /// Traffic from outside `sip.allow`.
    NotAllowed,
    /// A TCP connection refused or cut over a connection cap.
    ConnectionLimit,
    /// A TCP sender that did not finish a message in time (slowloris).
    SlowSender,
}

impl SecurityEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEvent::BadAuth => "bad-auth",
            SecurityEvent::RateLimited => "rate-limited",
            SecurityEvent::Scanner => "scanner",
            SecurityEvent::NotAllowed => "not-allowed",
            SecurityEvent::ConnectionLimit => "connection-limit",
            SecurityEvent::SlowSender => "slow-sender",
        }
    }
}

impl fmt::Display for SecurityEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The line's text: `SECURITY <kind> src=<ip> detail="<escaped>"`.
pub fn line(event: SecurityEvent, source: IpAddr, detail: &str) -> String {
    format!("SECURITY {event} src={source} detail={}", quote(detail))
}

/// Logs one security event.
pub fn report(event: SecurityEvent, source: IpAddr, detail: &str) {
    tracing::warn!(target: "zendesk_ivr::security", "{}", line(event, source, detail));
}

/// Double-quoted, with quotes, backslashes and everything outside printable ASCII escaped,
/// and cut to 200 characters: nothing in it can end the line or the field.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(200) + 2);
    out.push('"');
    for c in text.chars().take(200) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            other => out.push_str(&format!("\\u{{{:x}}}", other as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_the_fixed_form() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            line(SecurityEvent::RateLimited, ip, "INVITE 50/s"),
            r#"SECURITY rate-limited src=192.0.2.7 detail="INVITE 50/s""#
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(
            line(SecurityEvent::BadAuth, v6, "").starts_with("SECURITY bad-auth src=2001:db8::1 ")
        );
    }

    #[test]
    fn a_detail_cannot_forge_a_field_or_a_line() {
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let text =
            line(SecurityEvent::Scanner, ip, "friendly-scanner\" src=10.0.0.1\r\nSECURITY x");
        assert_eq!(text.matches("src=").count(), 2, "{text}");
        assert!(text.contains(r#"\" src=10.0.0.1\u{d}\u{a}SECURITY x""#), "{text}");
        assert!(!text.contains('\n') && !text.contains('\r'));
        // The real source comes first, so a filter anchored on the first src= is safe.
        assert!(text.starts_with("SECURITY scanner src=198.51.100.1 "));
    }

    #[test]
    fn a_long_detail_is_cut() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(line(SecurityEvent::SlowSender, ip, &"a".repeat(10_000)).len() < 260);
    }
}

//! DTMF carried in SIP INFO bodies.
//!
//! Two formats are in use:
//! - `application/dtmf-relay`: `Signal=5\r\nDuration=160\r\n` (duration in ms);
//! - `application/dtmf`: the digit alone, e.g. `5`.

use super::{DigitEvent, DigitSource, digit_of_event, event_code};

/// Bodies longer than this are not DTMF and are ignored.
pub const MAX_INFO_BODY: usize = 512;

/// Duration reported when the body does not say (the common default).
pub const DEFAULT_DURATION_MS: u32 = 250;

/// Longest duration we believe; larger values are clamped.
const MAX_DURATION_MS: u32 = 60_000;

/// Parses a SIP INFO body. `content_type` is the Content-Type header value (parameters and
/// case are ignored). Returns `None` for other content types and malformed bodies.
pub fn parse_info(content_type: &str, body: &[u8]) -> Option<DigitEvent> {
    if body.len() > MAX_INFO_BODY {
        return None;
    }
    let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let (digit, duration_ms) = match mime.as_str() {
        "application/dtmf-relay" => parse_relay(text)?,
        "application/dtmf" => (parse_signal(text.trim())?, DEFAULT_DURATION_MS),
        _ => return None,
    };
    Some(DigitEvent { digit, duration_ms, source: DigitSource::SipInfo })
}

fn parse_relay(text: &str) -> Option<(char, u32)> {
    let mut signal = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "signal" => signal = Some(parse_signal(value)?),
            "duration" => {
                duration =
                    value.parse::<u64>().ok().map(|d| d.min(u64::from(MAX_DURATION_MS)) as u32)
            }
            _ => {}
        }
    }
    Some((signal?, duration.unwrap_or(DEFAULT_DURATION_MS)))
}

/// A digit as a character (`5`, `*`, `#`, `A`) or as its event code (`10` = `*`, `11` = `#`).
fn parse_signal(value: &str) -> Option<char> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => event_code(c).and_then(digit_of_event),
        _ => value.parse::<u8>().ok().and_then(digit_of_event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(ct: &str, body: &str) -> Option<(char, u32)> {
        parse_info(ct, body.as_bytes()).map(|e| {
            assert_eq!(e.source, DigitSource::SipInfo);
            (e.digit, e.duration_ms)
        })
    }

    #[test]
    fn dtmf_relay() {
        assert_eq!(
            digit("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            digit("Application/DTMF-Relay; charset=utf-8", "Signal= #\nDuration= 100"),
            Some(('#', 100))
        );
        assert_eq!(digit("application/dtmf-relay", "Signal=*"), Some(('*', 250)));
        assert_eq!(digit("application/dtmf-relay", "Signal=11\r\n"), Some(('#', 250)));
        assert_eq!(digit("application/dtmf-relay", "Signal=d"), Some(('D', 250)));
        assert_eq!(
            digit("application/dtmf-relay", "Signal=1\r\nDuration=99999999999"),
            Some(('1', 60_000))
        );
    }

    #[test]
    fn plain_dtmf() {
        assert_eq!(digit("application/dtmf", "7"), Some(('7', 250)));
        assert_eq!(digit("application/dtmf", " 0\r\n"), Some(('0', 250)));
        assert_eq!(digit("application/dtmf", "10"), Some(('*', 250)));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(digit("application/dtmf-relay", "Duration=160"), None);
        assert_eq!(digit("application/dtmf-relay", "Signal=X"), None);
        assert_eq!(digit("application/dtmf-relay", "Signal=55"), None);
        assert_eq!(digit("application/dtmf", ""), None);
        assert_eq!(digit("application/dtmf", "12345"), None);
        assert_eq!(digit("text/plain", "5"), None);
        assert_eq!(digit("", "5"), None);
        assert_eq!(parse_info("application/dtmf", &[0xff, 0xfe]), None);
        let long = format!("Signal=5\r\n{}", " ".repeat(MAX_INFO_BODY));
        assert_eq!(digit("application/dtmf-relay", &long), None);
    }
}

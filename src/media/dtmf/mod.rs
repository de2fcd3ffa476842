//! DTMF in all three forms, each yielding the same [`DigitEvent`]:
//!
//! - [`rfc4733`]: telephone-event RTP packets (receive and transmit), with the payload type
//!   negotiated in SDP;
//! - [`info`]: SIP INFO bodies (`application/dtmf-relay`, `application/dtmf`);
//! - [`inband`]: Goertzel detection on decoded G.711 audio, for calls that did not
//!   negotiate telephone-event.
//!
//! All of it is sans-IO. A digit is reported once, as soon as it is recognised (its start),
//! so the flow layer can stop a prompt at once (barge-in).

pub mod inband;
pub mod info;
pub mod rfc4733;

pub use inband::InbandDetector;
pub use info::parse_info;
pub use rfc4733::{Rfc4733Receiver, TelephoneEvent, encode_digit};

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// RFC 4733 telephone-event RTP packets.
    Rfc4733,
    /// A SIP INFO request.
    SipInfo,
    /// Tones detected in the audio.
    InBand,
}

impl DigitSource {
    /// A short fixed name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::SipInfo => "info",
            DigitSource::InBand => "inband",
        }
    }
}

/// A key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    /// One of `0-9 * # A-D`.
    pub digit: char,
    /// How long the key is known to have been pressed when the digit was reported: the
    /// full duration for SIP INFO, the duration so far for RTP events and in-band tones
    /// (reported at their start).
    pub duration_ms: u32,
    pub source: DigitSource,
}

/// The sixteen DTMF digits in RFC 4733 event-code order (events 0–15).
pub const DIGITS: [char; 16] =
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// The RFC 4733 event code of a digit (accepts lower-case `a-d`).
pub fn event_code(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&c| c == d).map(|i| i as u8)
}

/// The digit of an RFC 4733 event code, if it is one of the sixteen DTMF events.
pub fn digit_of_event(code: u8) -> Option<char> {
    DIGITS.get(usize::from(code)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_round_trip() {
        for (i, &d) in DIGITS.iter().enumerate() {
            assert_eq!(event_code(d), Some(i as u8));
            assert_eq!(digit_of_event(i as u8), Some(d));
        }
        assert_eq!(event_code('b'), Some(13));
        assert_eq!(event_code('x'), None);
        assert_eq!(digit_of_event(16), None);
    }
}

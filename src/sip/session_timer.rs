//! RFC 4028 session timers, UAS side: negotiate the interval and the refresher, and
//! compute when to refresh (when we are the refresher) or give up (when the peer is).

use std::time::{Duration, Instant};

use rsip::Header;

use crate::sip::header_text;
use crate::sip::response;

/// The least interval RFC 4028 allows.
pub const ABSOLUTE_MIN_SE: u32 = 90;

/// Who keeps the session alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The far end refreshes.
    Peer,
    /// We refresh, with UPDATE (or re-INVITE when the peer does not allow UPDATE).
    Us,
}

/// A negotiated session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval_s: u32,
    pub refresher: Refresher,
    /// The peer said `Supported: timer`, so our 2xx carries `Require: timer`.
    pub peer_supports: bool,
}

/// The outcome of reading a session-refreshing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// No session timer for this session.
    Off,
    On(SessionTimer),
    /// Answer 422 with `Min-SE: min_se`.
    TooSmall {
        min_se: u32,
    },
}

/// `Session-Expires: 1800;refresher=uac` → (1800, Some("uac")).
fn read_session_expires(headers: &rsip::Headers) -> Option<(u32, Option<String>)> {
    let value = header_text::first(headers, "Session-Expires", Some("x"))?;
    let delta = value.split(';').next()?.trim().parse::<u32>().ok()?;
    let refresher = header_text::header_param(&format!("<>{value}"), "refresher")
        .map(|r| r.to_ascii_lowercase());
    Some((delta, refresher))
}

fn read_min_se(headers: &rsip::Headers) -> Option<u32> {
    header_text::first(headers, "Min-SE", None)?.split(';').next()?.trim().parse().ok()
}

/// Negotiate from a request the peer sent (INVITE, re-INVITE or UPDATE) as its UAC.
/// We prefer the peer to refresh; we only refresh when it asks us to or cannot.
pub fn negotiate(headers: &rsip::Headers, our_interval_s: u32, our_min_se: u32) -> Negotiation {
    let our_min_se = our_min_se.max(ABSOLUTE_MIN_SE);
    let peer_supports = header_text::option_tags(headers, "Supported", Some("k"))
        .iter()
        .chain(header_text::option_tags(headers, "Require", None).iter())
        .any(|t| t == "timer");
    let floor = our_min_se.max(read_min_se(headers).unwrap_or(0));
    let requested = read_session_expires(headers);
    let interval_s = match &requested {
        Some((se, _)) if *se < our_min_se => {
            return Negotiation::TooSmall { min_se: our_min_se };
        }
        Some((se, _)) => (*se).min(our_interval_s.max(floor)).max(floor),
        None if peer_supports => our_interval_s.max(floor),
        None => return Negotiation::Off,
    };
    let refresher = if !peer_supports {
        Refresher::Us
    } else {
        match requested.as_ref().and_then(|(_, r)| r.as_deref()) {
            Some("uas") => Refresher::Us,
            _ => Refresher::Peer,
        }
    };
    Negotiation::On(SessionTimer { interval_s, refresher, peer_supports })
}

/// The session timer set up by the 2xx to an INVITE we sent (RFC 4028 §7.2): none
/// without Session-Expires; we refresh when it says `refresher=uac`. An interval below
/// the RFC minimum of 90 s is raised to it, so that a peer cannot make us refresh
/// in a loop.
pub fn from_answer(headers: &rsip::Headers) -> Option<SessionTimer> {
    let (interval_s, refresher) = read_session_expires(headers)?;
    let refresher = match refresher.as_deref() {
        Some("uac") => Refresher::Us,
        _ => Refresher::Peer,
    };
    let peer_supports = header_text::option_tags(headers, "Require", None)
        .iter()
        .chain(header_text::option_tags(headers, "Supported", Some("k")).iter())
        .any(|t| t == "timer");
    Some(SessionTimer { interval_s: interval_s.max(ABSOLUTE_MIN_SE), refresher, peer_supports })
}

impl SessionTimer {
    /// Headers for our 2xx to the refreshing request.
    pub fn response_headers(&self) -> Vec<Header> {
        let who = match self.refresher {
            Refresher::Peer => "uac",
            Refresher::Us => "uas",
        };
        let mut out = vec![response::other(
            "Session-Expires",
            format!("{};refresher={who}", self.interval_s),
        )];
        if self.peer_supports {
            out.push(Header::Require(rsip::headers::Require::from("timer".to_string())));
        }
        out
    }

    /// Headers for a refresh we send (we are the UAC of that request and the refresher).
    pub fn refresh_headers(&self) -> Vec<Header> {
        vec![
            response::other("Session-Expires", format!("{};refresher=uac", self.interval_s)),
            response::supported(),
        ]
    }

    /// When we must send a refresh (half the interval), if we are the refresher.
    pub fn refresh_at(&self, now: Instant) -> Option<Instant> {
        (self.refresher == Refresher::Us)
            .then(|| now + Duration::from_secs(u64::from(self.interval_s / 2)))
    }

    /// When the session is over without a refresh: for the peer as refresher,
    /// interval − min(32 s, interval/3) (RFC 4028 §10); for us, the full interval.
    pub fn expires_at(&self, now: Instant) -> Instant {
        let interval = u64::from(self.interval_s);
        let secs = match self.refresher {
            Refresher::Peer => interval - (interval / 3).min(32),
            Refresher::Us => interval,
        };
        now + Duration::from_secs(secs)
    }
}

/// The 422 headers: `Min-SE`.
pub fn too_small_headers(min_se: u32) -> Vec<Header> {
    vec![response::other("Min-SE", min_se.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> rsip::Headers {
        let mut h = rsip::Headers::default();
        for (n, v) in lines {
            let header = match *n {
                "Supported" => Header::Supported(rsip::headers::Supported::from(v.to_string())),
                _ => response::other(n, v.to_string()),
            };
            h.push(header);
        }
        h
    }

    #[test]
    fn peer_refreshes_by_default() {
        let h = headers(&[("Supported", "timer, 100rel"), ("Session-Expires", "1800")]);
        let Negotiation::On(t) = negotiate(&h, 1800, 90) else { panic!("timer expected") };
        assert_eq!(t.refresher, Refresher::Peer);
        assert_eq!(t.interval_s, 1800);
        let now = Instant::now();
        assert_eq!(t.refresh_at(now), None);
        assert_eq!(t.expires_at(now), now + Duration::from_secs(1768));
    }

    #[test]
    fn too_small_and_lowered_and_uas_refresher() {
        let h = headers(&[("Supported", "timer"), ("Session-Expires", "60")]);
        assert_eq!(negotiate(&h, 1800, 120), Negotiation::TooSmall { min_se: 120 });
        let h = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "7200;refresher=uas"),
            ("Min-SE", "600"),
        ]);
        let Negotiation::On(t) = negotiate(&h, 300, 90) else { panic!() };
        assert_eq!(t.interval_s, 600, "never below the peer's Min-SE");
        assert_eq!(t.refresher, Refresher::Us);
        // A proxy added Session-Expires but the caller has no timer support: we refresh.
        let h = headers(&[("x", "1800;refresher=uac")]);
        let Negotiation::On(t) = negotiate(&h, 1800, 90) else { panic!() };
        assert_eq!((t.refresher, t.peer_supports), (Refresher::Us, false));
        assert_eq!(negotiate(&headers(&[]), 1800, 90), Negotiation::Off);
    }
}

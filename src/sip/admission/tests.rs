//! Admission in virtual time.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::{self, Limits};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn request(method: &str, branch: &str, to_tag: bool, user_agent: Option<&str>) -> rsip::Request {
    let tag = if to_tag { ";tag=theirs" } else { "" };
    let agent = user_agent.map(|ua| format!("User-Agent: {ua}\r\n")).unwrap_or_default();
    let text = format!(
        "{method} sip:100@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{branch}\r\n\
         From: <sip:caller@198.51.100.7>;tag=1\r\n\
         To: <sip:100@192.0.2.1>{tag}\r\n\
         Call-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         {agent}Content-Length: 0\r\n\r\n"
    );
    match message::parse(text.as_bytes(), &Limits::default()).unwrap() {
        rsip::SipMessage::Request(request) => request,
        rsip::SipMessage::Response(_) => unreachable!("a request was written"),
    }
}

fn invite(n: u32) -> rsip::Request {
    request("INVITE", &format!("inv{n}"), false, None)
}

fn options(n: u32) -> rsip::Request {
    request("OPTIONS", &format!("opt{n}"), false, None)
}

fn settings() -> AdmissionSettings {
    AdmissionSettings { max_sources: 100, ..AdmissionSettings::open() }
}

fn rate(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn notices(admission: &mut Admission) -> Vec<Notice> {
    std::iter::from_fn(|| admission.poll_notice()).collect()
}

#[test]
fn open_admission_lets_everything_in() {
    let now = Instant::now();
    let mut a = Admission::open(now);
    for n in 0..1000 {
        assert_eq!(a.check_request(now, ip("203.0.113.9"), &invite(n)), Verdict::Admit);
    }
    assert!(notices(&mut a).is_empty());
}

#[test]
fn outside_the_allow_list_is_dropped_or_forbidden_and_logged_once() {
    let now = Instant::now();
    let allow = vec!["10.0.0.0/8".parse().unwrap(), "192.0.2.7".parse().unwrap()];
    let mut a = Admission::new(now, AdmissionSettings { allow: allow.clone(), ..settings() });
    assert_eq!(a.check_request(now, ip("10.9.8.7"), &options(1)), Verdict::Admit);
    assert_eq!(a.check_request(now, ip("192.0.2.7"), &options(2)), Verdict::Admit);
    assert_eq!(
        a.check_request(now, ip("192.0.2.8"), &options(3)),
        Verdict::Drop(Reason::NotAllowed)
    );
    // Answers to our own requests (an agent's phone outside the list) still come in.
    assert_eq!(a.check_response(now, ip("192.0.2.8")), Verdict::Admit);
    let logged = notices(&mut a);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].event, SecurityEvent::NotAllowed);
    assert_eq!(logged[0].source, ip("192.0.2.8"));

    let forbid = AdmissionSettings { allow, deny_response: DenyResponse::Forbidden, ..settings() };
    let mut a = Admission::new(now, forbid);
    assert_eq!(
        a.check_request(now, ip("203.0.113.1"), &invite(1)),
        Verdict::Reject { reason: Reason::NotAllowed, status: 403, retry_after: None }
    );
    // An ACK is never answered.
    let ack = request("ACK", "ack1", true, None);
    assert_eq!(a.check_request(now, ip("203.0.113.1"), &ack), Verdict::Drop(Reason::NotAllowed));
}

#[test]
fn scanners_are_dropped_and_logged_with_their_user_agent() {
    let now = Instant::now();
    let config = crate::config::Config::default();
    let mut a = Admission::new(now, AdmissionSettings::from_config(&config));
    let scan = request("OPTIONS", "s1", false, Some("Friendly-Scanner"));
    assert_eq!(a.check_request(now, ip("203.0.113.5"), &scan), Verdict::Drop(Reason::Scanner));
    let svwar = request("REGISTER", "s2", false, Some("sipvicious/0.3.4"));
    assert_eq!(a.check_request(now, ip("203.0.113.5"), &svwar), Verdict::Drop(Reason::Scanner));
    let phone = request("OPTIONS", "p1", false, Some("baresip v1.0.0 (x86_64/linux)"));
    assert_eq!(a.check_request(now, ip("203.0.113.6"), &phone), Verdict::Admit);
    let logged = notices(&mut a);
    assert_eq!(logged.len(), 1, "one line per source and interval: {logged:?}");
    assert_eq!(logged[0].event, SecurityEvent::Scanner);
    assert!(logged[0].detail.contains("Friendly-Scanner"), "{:?}", logged[0]);

    // The list is configurable: empty turns the check off.
    let off = AdmissionSettings { scanner_user_agents: Vec::new(), ..settings() };
    let mut a = Admission::new(now, off);
    assert_eq!(a.check_request(now, ip("203.0.113.5"), &scan), Verdict::Admit);
}

#[test]
fn a_source_over_its_request_rate_is_dropped_until_its_bucket_refills() {
    let start = Instant::now();
    let mut a = Admission::new(start, AdmissionSettings { requests_per_s: rate(10), ..settings() });
    let flooder = ip("127.0.0.2");
    let admitted =
        (0..100).filter(|n| a.check_request(start, flooder, &options(*n)) == Verdict::Admit);
    assert_eq!(admitted.count(), 10, "a burst of the rate, no more");
    // Another source is not affected.
    assert_eq!(a.check_request(start, ip("127.0.0.1"), &options(500)), Verdict::Admit);
    // 10/s: one more every 100 ms of virtual time.
    let later = start + Duration::from_millis(100);
    assert_eq!(a.check_request(later, flooder, &options(101)), Verdict::Admit);
    assert_eq!(a.check_request(later, flooder, &options(102)), Verdict::Drop(Reason::SourceRate));
    let later = start + Duration::from_secs(2);
    let admitted =
        (200..300).filter(|n| a.check_request(later, flooder, &options(*n)) == Verdict::Admit);
    assert_eq!(admitted.count(), 10);
}

#[test]
fn a_limited_source_is_logged_once_per_interval() {
    let start = Instant::now();
    let mut a = Admission::new(start, AdmissionSettings { requests_per_s: rate(5), ..settings() });
    let flooder = ip("127.0.0.2");
    let mut logged = Vec::new();
    for ms in 0..120_000u64 {
        let now = start + Duration::from_millis(ms);
        let _ = a.check_request(now, flooder, &options(ms as u32));
        logged.extend(notices(&mut a));
    }
    // Over the limit the whole two minutes: the first time, then once per minute.
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged.iter().all(|n| n.event == SecurityEvent::RateLimited && n.source == flooder));
    assert!(logged[0].detail.contains("5 requests/s"), "{:?}", logged[0]);
}

#[test]
fn new_invites_have_their_own_limit_and_trusted_sources_get_503() {
    let now = Instant::now();
    let settings = AdmissionSettings {
        requests_per_s: rate(100),
        invites_per_s: rate(2),
        trusted: vec!["10.0.0.0/8".parse().unwrap()],
        ..settings()
    };
    let mut a = Admission::new(now, settings);
    let stranger = ip("203.0.113.1");
    assert_eq!(a.check_request(now, stranger, &invite(1)), Verdict::Admit);
    assert_eq!(a.check_request(now, stranger, &invite(2)), Verdict::Admit);
    assert_eq!(a.check_request(now, stranger, &invite(3)), Verdict::Drop(Reason::SourceInviteRate));
    // Other requests, and INVITEs inside a dialog, still pass.
    assert_eq!(a.check_request(now, stranger, &options(1)), Verdict::Admit);
    let reinvite = request("INVITE", "re1", true, None);
    assert_eq!(a.check_request(now, stranger, &reinvite), Verdict::Admit);

    let trunk = ip("10.1.1.1");
    assert_eq!(a.check_request(now, trunk, &invite(11)), Verdict::Admit);
    assert_eq!(a.check_request(now, trunk, &invite(12)), Verdict::Admit);
    assert_eq!(
        a.check_request(now, trunk, &invite(13)),
        Verdict::Reject { reason: Reason::SourceInviteRate, status: 503, retry_after: Some(1) }
    );
}

#[test]
fn a_retransmitted_invite_is_not_counted_again_nor_refused() {
    let now = Instant::now();
    let settings = AdmissionSettings { max_cps: rate(1), invites_per_s: rate(1), ..settings() };
    let mut a = Admission::new(now, settings);
    let caller = ip("192.0.2.1");
    assert_eq!(a.check_request(now, caller, &invite(1)), Verdict::Admit);
    for ms in [500, 1500, 3500] {
        let at = now + Duration::from_millis(ms) / 4;
        assert_eq!(
            a.check_request(at, caller, &invite(1)),
            Verdict::Admit,
            "retransmission at {ms}"
        );
    }
    assert_ne!(a.check_request(now, caller, &invite(2)), Verdict::Admit);
}

#[test]
fn max_cps_holds_new_calls_overall_with_retry_after() {
    let start = Instant::now();
    let mut a = Admission::new(start, AdmissionSettings { max_cps: rate(5), ..settings() });
    let mut verdicts = Vec::new();
    for n in 0..20 {
        // Twenty callers, one call each.
        let source = IpAddr::from([192, 0, 2, n as u8 + 1]);
        verdicts.push(a.check_request(start, source, &invite(n)));
    }
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Admit).count(), 5);
    assert!(verdicts.iter().filter(|v| **v != Verdict::Admit).all(
        |v| *v == Verdict::Reject { reason: Reason::MaxCps, status: 503, retry_after: Some(1) }
    ));
    // Load is not an attack: no security line.
    assert!(notices(&mut a).is_empty());
    // OPTIONS are not calls.
    assert_eq!(a.check_request(start, ip("192.0.2.99"), &options(1)), Verdict::Admit);
    let later = start + Duration::from_secs(1);
    assert_eq!(a.check_request(later, ip("192.0.2.99"), &invite(99)), Verdict::Admit);
}

#[test]
fn the_source_table_stays_bounded_under_a_spoofed_flood() {
    let start = Instant::now();
    let settings = AdmissionSettings { requests_per_s: rate(2), max_sources: 50, ..settings() };
    let mut a = Admission::new(start, settings);
    let mut admitted = 0;
    for n in 0..10_000u32 {
        let now = start + Duration::from_micros(u64::from(n) * 100);
        let source = IpAddr::from((0x0a00_0000 + n).to_be_bytes());
        if a.check_request(now, source, &options(n)) == Verdict::Admit {
            admitted += 1;
        }
        assert!(a.tracked_sources() <= 3 * 50);
    }
    // One second of virtual time: 50 sources with their own bucket (2 each), the rest
    // in 40 network buckets (a /24 each), refilled once the sweeps free the tables.
    assert!(admitted < 500, "admitted {admitted}");
    // Once the flood is over and the buckets refill, a new source gets in at once.
    let later = start + Duration::from_secs(30);
    assert_eq!(a.check_request(later, ip("192.0.2.200"), &options(1)), Verdict::Admit);
    assert!(a.tracked_sources() <= 2, "swept: {}", a.tracked_sources());
}

#[test]
fn the_rejection_carries_retry_after_and_the_configured_server() {
    let response = rejection(&invite(1), 503, Some(4), "t1", "");
    assert_eq!(crate::sip::response::status_of(&response), 503);
    let text = response.to_string();
    assert!(text.contains("Retry-After: 4"), "{text}");
    assert!(!text.contains("Server:"), "an empty server header is left out: {text}");
    assert!(text.contains(";tag=t1"), "{text}");
    let response = rejection(&invite(1), 403, None, "t2", "pbx");
    assert!(response.to_string().contains("Server: pbx"));
}

#[test]
fn an_allow_list_admits_the_transfer_targets_given_by_address() {
    let now = Instant::now();
    let mut config = crate::config::Config::default();
    config.sip.allow = vec!["203.0.113.0/24".parse().unwrap()];
    config.routing.default_queue = "sip:agent@192.0.2.50:5070".into();
    config.routing.priority_queue = "sip:vip@agents.example.com".into();
    let mut a = Admission::new(now, AdmissionSettings::from_config(&config));
    assert_eq!(a.check_request(now, ip("203.0.113.9"), &options(1)), Verdict::Admit);
    assert_eq!(a.check_request(now, ip("192.0.2.50"), &options(2)), Verdict::Admit);
    assert_eq!(
        a.check_request(now, ip("192.0.2.51"), &options(3)),
        Verdict::Drop(Reason::NotAllowed)
    );
    // No list: nothing is added, everyone may send.
    config.sip.allow.clear();
    assert!(AdmissionSettings::from_config(&config).allow.is_empty());
}

#[test]
fn peers_named_by_host_name_are_admitted_as_they_resolve() {
    let now = Instant::now();
    let mut config = crate::config::Config::default();
    config.sip.allow = vec!["203.0.113.0/24".parse().unwrap()];
    config.routing.default_queue = "sip:agent@agents.example.com:5070".into();
    config.routing.priority_queue = "sip:vip@192.0.2.50".into();
    config.sip.register = vec![crate::sip::auth_config::RegisterConfig {
        name: "trunk".into(),
        registrar: "sip:198.51.100.20".into(),
        user: "ivr".into(),
        auth_user: None,
        password_env: None,
        password_file: None,
        expires_s: 3600,
        transport: "udp".into(),
    }];
    let settings = AdmissionSettings::from_config(&config);
    assert_eq!(settings.peers, vec![ip("192.0.2.50"), ip("198.51.100.20")]);
    assert_eq!(settings.allow.len(), 1, "the configured list is kept as written");
    let mut a = Admission::new(now, settings);
    let not_allowed = Verdict::Drop(Reason::NotAllowed);
    let agent = ip("192.0.2.60");
    assert_eq!(a.check_request(now, agent, &options(1)), not_allowed, "not resolved yet");
    assert_eq!(a.check_request(now, ip("198.51.100.20"), &options(2)), Verdict::Admit);

    a.set_resolved_peers([agent, ip("::ffff:192.0.2.61")]);
    assert_eq!(a.check_request(now, agent, &options(3)), Verdict::Admit);
    assert_eq!(a.check_request(now, ip("192.0.2.61"), &options(4)), Verdict::Admit);
    assert!(a.is_peer(ip("::ffff:192.0.2.60")));
    // The name moved: the old address is out, the new one in, the configured ones stay.
    a.set_resolved_peers([ip("192.0.2.62")]);
    assert_eq!(a.check_request(now, agent, &options(5)), not_allowed);
    assert_eq!(a.check_request(now, ip("192.0.2.62"), &options(6)), Verdict::Admit);
    assert_eq!(a.check_request(now, ip("192.0.2.50"), &options(7)), Verdict::Admit);
    assert_eq!(a.check_request(now, ip("192.0.2.63"), &options(8)), not_allowed);
}

#[test]
fn a_peer_keeps_its_own_bucket_when_a_flood_fills_the_tables() {
    let start = Instant::now();
    let settings = AdmissionSettings {
        requests_per_s: rate(5),
        max_sources: 20,
        peers: vec![ip("192.0.2.50")],
        ..settings()
    };
    let mut a = Admission::new(start, settings);
    a.set_resolved_peers([ip("192.0.2.60")]);
    let mut refused = 0;
    for n in 0..20_000u32 {
        let now = start + Duration::from_micros(u64::from(n) * 50);
        let _ =
            a.check_request(now, IpAddr::from((0x0a00_0000 + (n << 8)).to_be_bytes()), &options(n));
        // Each peer sends 4 a second, within its rate.
        if n % 5_000 == 0 {
            for peer in [ip("192.0.2.50"), ip("192.0.2.60")] {
                if a.check_request(now, peer, &options(n)) != Verdict::Admit {
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(refused, 0, "neither peer shared the flood's bucket");
    assert!(a.tracked_sources() <= 3 * 20);
}

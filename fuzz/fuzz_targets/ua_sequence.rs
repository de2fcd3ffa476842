//! The UA core (`sip::dialog::Ua`) with the transaction layer, driven the way the endpoint
//! drives them, fed a sequence of SIP messages, call commands and timer advances in
//! virtual time.
//!
//! Input: segments separated by NUL bytes. A segment starting with byte 1 is a list of
//! commands (read with `arbitrary`); one starting with 2 or 3 is a SIP message from the
//! second peer (2: UDP, 3: TCP); anything else is a SIP message from the first peer over
//! UDP, so a torture message is a one-message sequence as it is. In messages, `$tag`,
//! `$branch`, `$callid` and `$cseq` stand for our tag, the branch, Call-ID and CSeq of the
//! last request we sent, so that in-dialog requests and responses can match.
//!
//! Checks: no panic; the live transactions and calls stay within their limits; a timer
//! that fired is not due again at once; and once the input is over, hanging up every call
//! and letting time pass leaves no call and no transaction behind.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use zendesk_ivr::config::CodecName;
use zendesk_ivr::sip::dialog::{CallEvent, CallHandle, DialRoute, Ua, UaAction, UaConfig};
use zendesk_ivr::sip::header_text;
use zendesk_ivr::sip::message::{self, Limits, Transport};
use zendesk_ivr::sip::transaction::{Peer, TimerConfig, TransactionLayer};

const MAX_TRANSACTIONS: usize = 64;
const MAX_CALLS: usize = 4;
const LOCAL_RTP: ([u8; 4], u16) = ([192, 0, 2, 1], 20_000);

/// How the harness answers a new incoming call.
#[derive(Clone, Copy)]
enum Policy {
    Accept,
    Reject(u16),
    Leave,
}

struct Harness {
    now: Instant,
    transactions: TransactionLayer,
    ua: Ua,
    peers: [Peer; 2],
    policy: Policy,
    calls: Vec<CallHandle>,
    dials: usize,
    /// What `$tag`, `$branch`, `$callid`, `$cseq` stand for.
    tag: String,
    branch: String,
    call_id: String,
    cseq: String,
}

impl Harness {
    fn new() -> Harness {
        let timers = TimerConfig::default();
        let config = UaConfig {
            contact_user: "ivr".into(),
            local_host: "192.0.2.1".into(),
            local_port: 5060,
            tls_port: None,
            user_agent: "zendesk-ivr".into(),
            server: "zendesk-ivr".into(),
            codecs: vec![CodecName::Pcmu, CodecName::Pcma],
            offer_telephone_event: true,
            session_expires: 90,
            min_se: 90,
            send_ringing: true,
            srtp: zendesk_ivr::config::SrtpPolicy::Optional,
            max_calls: MAX_CALLS,
            timers,
        };
        let peer = |addr: &str, transport| Peer {
            addr: addr.parse().unwrap_or(SocketAddr::from(([192, 0, 2, 9], 5060))),
            transport,
        };
        Harness {
            now: Instant::now(),
            transactions: TransactionLayer::with_max_transactions(timers, MAX_TRANSACTIONS),
            ua: Ua::new(config),
            peers: [
                peer("192.0.2.10:5060", Transport::Udp),
                peer("192.0.2.11:5070", Transport::Tcp),
            ],
            policy: Policy::Accept,
            calls: Vec::new(),
            dials: 0,
            tag: String::new(),
            branch: String::new(),
            call_id: String::new(),
            cseq: String::new(),
        }
    }

    fn message(&mut self, bytes: &[u8], peer: Peer) {
        let text = String::from_utf8_lossy(bytes);
        let bytes = if text.contains('$') {
            text.replace("$tag", &self.tag)
                .replace("$branch", &self.branch)
                .replace("$callid", &self.call_id)
                .replace("$cseq", &self.cseq)
                .into_bytes()
        } else {
            bytes.to_vec()
        };
        let Ok(parsed) = message::parse(&bytes, &Limits::default()) else { return };
        match parsed {
            rsip::SipMessage::Request(request) => {
                self.transactions.handle_request(self.now, request, peer)
            }
            rsip::SipMessage::Response(response) => {
                self.transactions.handle_response(self.now, response, peer)
            }
        }
        self.flush();
    }

    fn commands(&mut self, u: &mut Unstructured) -> Result<()> {
        while !u.is_empty() {
            let call = match self.calls.len() {
                0 => None,
                n => Some(self.calls[u.choose_index(n)?]),
            };
            let now = self.now;
            let local_rtp = SocketAddr::from(LOCAL_RTP);
            let _ = match (u.int_in_range(0..=11)?, call) {
                (0, _) => {
                    self.advance(Duration::from_millis(u.int_in_range(0..=1_000)?));
                    Ok(())
                }
                (1, _) => {
                    self.advance(Duration::from_millis(u.int_in_range(0..=200_000)?));
                    Ok(())
                }
                (2, _) => {
                    self.policy = match u.int_in_range(0..=2)? {
                        0 => Policy::Accept,
                        1 => Policy::Reject(u.int_in_range(100..=699)?),
                        _ => Policy::Leave,
                    };
                    Ok(())
                }
                (3, Some(call)) => self.ua.accept(now, call, local_rtp),
                (4, Some(call)) => self.ua.reject(now, call, u.arbitrary()?),
                (5, Some(call)) => self.ua.hangup(now, call),
                (6, Some(call)) => {
                    let target = if u.arbitrary()? { "sip:queue@192.0.2.20:5080" } else { "x" };
                    self.ua.refer(now, call, target)
                }
                (7, Some(call)) => {
                    let len = u.int_in_range(0..=64)?.min(u.len());
                    let body = u.bytes(len)?.to_vec();
                    self.ua.send_info(now, call, "application/dtmf-relay", body)
                }
                (8, _) => {
                    self.ua.set_draining(u.arbitrary()?);
                    Ok(())
                }
                (9, _) if self.dials < 8 => {
                    self.dials += 1;
                    let transport = if u.arbitrary()? { Transport::Tcp } else { Transport::Udp };
                    let route = DialRoute { resolved: None, headers: &[] };
                    let target = "sip:agent@192.0.2.10:5060";
                    match self.ua.dial_via(now, target, "caller", transport, local_rtp, route) {
                        Ok(call) => {
                            self.calls.push(call);
                            Ok(())
                        }
                        Err(err) => Err(err),
                    }
                }
                (10, _) if self.dials < 8 => {
                    self.dials += 1;
                    self.ua.probe(now, "sip:192.0.2.10:5060", None).map(|_| ())
                }
                _ => Ok(()),
            };
            self.flush();
        }
        Ok(())
    }

    /// Lets virtual time pass, firing timers when they are due, as the endpoint does.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        let mut wakes = 0u32;
        loop {
            let next = match (self.transactions.poll_timeout(), self.ua.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(at) = next.filter(|at| *at <= until) else { break };
            self.now = self.now.max(at);
            self.transactions.handle_timeout(self.now);
            self.ua.handle_timeout(self.now);
            assert!(
                self.transactions.poll_timeout().is_none_or(|t| t > self.now),
                "a transaction timer fired but stays due"
            );
            assert!(
                self.ua.poll_timeout().is_none_or(|t| t > self.now),
                "a UA timer fired but stays due"
            );
            self.flush();
            wakes += 1;
            assert!(wakes < 100_000, "timers wake too often");
        }
        self.now = until;
    }

    /// The endpoint's flush: transmits, transaction events to the UA, UA actions.
    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(transmit) = self.transactions.poll_transmit() {
                progressed = true;
                self.sent(&transmit.message);
            }
            while let Some(event) = self.transactions.poll_event() {
                progressed = true;
                self.ua.handle_event(self.now, event);
            }
            while let Some(action) = self.ua.poll_action() {
                progressed = true;
                self.carry_out(action);
            }
            self.check();
            if !progressed {
                return;
            }
        }
        panic!("the cores never stop producing work");
    }

    fn carry_out(&mut self, action: UaAction) {
        let now = self.now;
        match action {
            UaAction::Respond { id, response } => {
                let _ = self.transactions.respond(now, &id, response);
            }
            UaAction::Send { request, dest } => {
                if request.method == rsip::Method::Ack {
                    self.sent(&rsip::SipMessage::Request(request));
                } else {
                    let probe = (request.method == rsip::Method::Options)
                        .then(|| header_text::first(&request.headers, "Via", Some("v")))
                        .flatten()
                        .and_then(|via| {
                            header_text::header_param(&via, "branch").map(String::from)
                        });
                    if self.transactions.send_request(now, request, dest).is_err()
                        && let Some(branch) = probe
                    {
                        self.ua.probe_not_sent(&branch);
                    }
                }
            }
            UaAction::Event(CallEvent::Incoming { call, .. }) => {
                self.calls.push(call);
                let local_rtp = SocketAddr::from(LOCAL_RTP);
                let _ = match self.policy {
                    Policy::Accept => self.ua.accept(now, call, local_rtp),
                    Policy::Reject(status) => self.ua.reject(now, call, status),
                    Policy::Leave => Ok(()),
                };
            }
            UaAction::Event(_) | UaAction::Probed { .. } => {}
        }
    }

    /// Remembers what the next messages may refer to.
    fn sent(&mut self, message: &rsip::SipMessage) {
        let headers = rsip::message::HasHeaders::headers(message);
        let first = |name, compact| header_text::first(headers, name, compact);
        let tag_of = |value: Option<String>| {
            value.and_then(|v| header_text::header_param(&v, "tag").map(String::from))
        };
        match message {
            rsip::SipMessage::Response(_) => {
                if let Some(tag) = tag_of(first("To", Some("t"))) {
                    self.tag = tag;
                }
            }
            rsip::SipMessage::Request(_) => {
                if let Some(tag) = tag_of(first("From", Some("f"))) {
                    self.tag = tag;
                }
                let via = first("Via", Some("v"));
                if let Some(branch) =
                    via.as_deref().and_then(|v| header_text::header_param(v, "branch"))
                {
                    self.branch = branch.to_string();
                }
                self.call_id = first("Call-ID", Some("i")).unwrap_or_default();
                self.cseq = first("CSeq", None).unwrap_or_default();
            }
        }
    }

    fn check(&self) {
        assert!(self.transactions.len() <= MAX_TRANSACTIONS + 8, "transactions unbounded");
        assert!(self.ua.call_count() <= MAX_CALLS + self.dials, "calls over the limit");
    }

    /// Hangs up what is left and lets every timer run out: nothing may stay behind.
    fn finish(mut self) {
        let now = self.now;
        for call in self.calls.clone() {
            if self.ua.hangup(now, call).is_err() {
                let _ = self.ua.reject(now, call, 480);
            }
        }
        self.flush();
        for _ in 0..4 {
            self.advance(Duration::from_secs(600));
        }
        assert_eq!(self.ua.call_count(), 0, "calls left after hang-up and 40 minutes");
        assert!(self.transactions.is_empty(), "transactions left after 40 minutes");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut harness = Harness::new();
    for segment in data.split(|&b| b == 0).take(64) {
        match segment.first() {
            Some(1) => {
                let _ = harness.commands(&mut Unstructured::new(&segment[1..]));
            }
            Some(2) => harness
                .message(&segment[1..], Peer { transport: Transport::Udp, ..harness.peers[1] }),
            Some(3) => harness.message(&segment[1..], harness.peers[1]),
            Some(_) => harness.message(segment, harness.peers[0]),
            None => {}
        }
    }
    harness.finish();
});

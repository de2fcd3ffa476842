use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::CodecName;
use crate::sip::dialog::{CallEvent, CallHandle, Ua, UaAction, UaConfig};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::transaction::{Peer, TimerConfig, TransactionEvent, TransactionId};

pub const OFFER: &str = "v=0\r\n\
o=caller 100 100 IN IP4 192.0.2.9\r\n\
s=-\r\n\
c=IN IP4 192.0.2.9\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

pub fn config() -> UaConfig {
    UaConfig {
        contact_user: "ivr".into(),
        local_host: "192.0.2.1".into(),
        local_port: 5060,
        tls_port: None,
        user_agent: "zendesk-ivr/test".into(),
        server: "zendesk-ivr/test".into(),
        codecs: vec![CodecName::Pcmu, CodecName::Pcma],
        offer_telephone_event: true,
        srtp: crate::config::SrtpPolicy::Optional,
        session_expires: 1800,
        min_se: 90,
        send_ringing: true,
        max_calls: 10,
        timers: TimerConfig::default(),
    }
}

pub fn caller() -> Peer {
    Peer { addr: "192.0.2.9:5062".parse().unwrap(), transport: Transport::Udp }
}

pub fn rtp() -> SocketAddr {
    "192.0.2.1:30000".parse().unwrap()
}

pub fn tid(s: &str) -> TransactionId {
    TransactionId(s.into())
}

/// A request from text; `Content-Length` is computed.
pub fn request(head: &str, body: &str) -> rsip::Request {
    let text = format!(
        "{}Content-Length: {}\r\n\r\n{body}",
        head.replace("\r\n", "\n").replace('\n', "\r\n"),
        body.len()
    );
    match rsip::SipMessage::try_from(text.as_str()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}\n{text}"),
    }
}

pub fn header(headers: &rsip::Headers, name: &str) -> Option<String> {
    ht::first(headers, name, None)
}

pub fn headers_all(headers: &rsip::Headers, name: &str) -> Vec<String> {
    ht::values(headers, name, None)
}

/// One caller's dialog as the far end sees it.
pub struct Caller {
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    pub to_tag: Option<String>,
    pub extra: String,
}

impl Caller {
    pub fn new(call_id: &str) -> Self {
        Caller {
            call_id: call_id.into(),
            from_tag: "caller1".into(),
            cseq: 1,
            to_tag: None,
            extra: String::new(),
        }
    }

    pub fn head(&self, method: &str, branch: &str, extra: &str) -> String {
        let to_tag = self.to_tag.as_ref().map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:ivr@192.0.2.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bK{branch}\n\
             Max-Forwards: 70\n\
             From: \"Alice\" <sip:+4712345678@192.0.2.9>;tag={}\n\
             To: <sip:ivr@192.0.2.1>{to_tag}\n\
             Call-ID: {}\n\
             CSeq: {} {method}\n\
             Contact: <sip:alice@192.0.2.9:5062>\n\
             {}{extra}",
            self.from_tag, self.call_id, self.cseq, self.extra
        )
    }

    pub fn make(&self, method: &str, branch: &str, extra: &str, body: &str) -> rsip::Request {
        let mut extra = extra.to_string();
        if !body.is_empty() && !extra.to_ascii_lowercase().contains("content-type") {
            extra.push_str("Content-Type: application/sdp\n");
        }
        request(&self.head(method, branch, &extra), body)
    }
}

/// A UA under test, a clock, and what came out.
pub struct Bench {
    pub ua: Ua,
    pub now: Instant,
}

impl Bench {
    pub fn new(config: UaConfig) -> Self {
        Bench { ua: Ua::new(config), now: Instant::now() }
    }

    /// Move the clock, running every timer on the way at its own instant.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        for _ in 0..1000 {
            match self.ua.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.ua.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    pub fn send(&mut self, id: &str, request: rsip::Request) -> Vec<UaAction> {
        self.ua.handle_event(
            self.now,
            TransactionEvent::Request { id: tid(id), request, source: caller() },
        );
        self.drain()
    }

    pub fn event(&mut self, event: TransactionEvent) -> Vec<UaAction> {
        self.ua.handle_event(self.now, event);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<UaAction> {
        std::iter::from_fn(|| self.ua.poll_action()).collect()
    }

    /// INVITE → 180 → Incoming → accept → 200 → ACK → Established. Returns the handle and
    /// the 200 OK.
    pub fn establish(
        &mut self,
        who: &mut Caller,
        invite_extra: &str,
    ) -> (CallHandle, rsip::Response) {
        let out = self.send("inv1", who.make("INVITE", "inv1", invite_extra, OFFER));
        let call = incoming(&out).expect("Incoming");
        self.ua.accept(self.now, call, rtp()).unwrap();
        let ok = only_response(&self.drain(), 200);
        let to = header(&ok.headers, "To").unwrap();
        who.to_tag = ht::tag(&to).map(str::to_string);
        let ack = who.make("ACK", "ack1", "", "");
        let out = self.event(TransactionEvent::Ack { request: ack, source: caller() });
        assert!(
            out.iter().any(|a| matches!(a, UaAction::Event(CallEvent::Established { .. }))),
            "{out:?}"
        );
        (call, ok)
    }
}

pub fn incoming(actions: &[UaAction]) -> Option<CallHandle> {
    actions.iter().find_map(|a| match a {
        UaAction::Event(CallEvent::Incoming { call, .. }) => Some(*call),
        _ => None,
    })
}

pub fn responses(actions: &[UaAction]) -> Vec<(TransactionId, rsip::Response)> {
    actions
        .iter()
        .filter_map(|a| match a {
            UaAction::Respond { id, response } => Some((id.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

pub fn statuses(actions: &[UaAction]) -> Vec<u16> {
    responses(actions).iter().map(|(_, r)| r.status_code.code()).collect()
}

/// The single response with `status` among the actions.
pub fn only_response(actions: &[UaAction], status: u16) -> rsip::Response {
    let found: Vec<_> =
        responses(actions).into_iter().filter(|(_, r)| r.status_code.code() == status).collect();
    assert_eq!(found.len(), 1, "want one {status} in {actions:?}");
    found.into_iter().next().unwrap().1
}

pub fn sent(actions: &[UaAction]) -> Vec<(rsip::Request, Peer)> {
    actions
        .iter()
        .filter_map(|a| match a {
            UaAction::Send { request, dest } => Some((request.clone(), *dest)),
            _ => None,
        })
        .collect()
}

pub fn events(actions: &[UaAction]) -> Vec<CallEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            UaAction::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// A response to one of our requests, as the far end would send it.
pub fn response_to(req: &rsip::Request, status: u16, extra: &str, body: &str) -> rsip::Response {
    let mut head = format!("SIP/2.0 {status} Whatever\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let value = header(&req.headers, name).unwrap();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&extra.replace('\n', "\r\n"));
    let text = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
    match rsip::SipMessage::try_from(text.as_str()) {
        Ok(rsip::SipMessage::Response(r)) => r,
        other => panic!("test response does not parse: {other:?}"),
    }
}

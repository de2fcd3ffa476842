//! Transaction layer tests, all in virtual time.

mod client;
mod memory;
mod pair;
mod server;
mod server_non_invite;
mod transport_error;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::Header;
use rsip::headers::UntypedHeader;

use super::build::response_to;
use super::{Peer, TimerConfig, TransactionEvent, TransactionLayer, Transmit};
use crate::sip::message::Transport;

pub(super) const T1: Duration = Duration::from_millis(500);
pub(super) const T2: Duration = Duration::from_secs(4);
pub(super) const T4: Duration = Duration::from_secs(5);

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn peer(addr: &str, transport: Transport) -> Peer {
    Peer { addr: addr.parse::<SocketAddr>().expect("test address"), transport }
}

/// The UAC as seen by the server: behind NAT, so the source differs from its Via.
pub(super) fn caller(transport: Transport) -> Peer {
    peer("203.0.113.5:40000", transport)
}

pub(super) fn ivr(transport: Transport) -> Peer {
    peer("192.0.2.10:5060", transport)
}

/// A request as a UAC at 198.51.100.7 sends it.
pub(super) struct Req<'a> {
    pub method: &'a str,
    pub branch: &'a str,
    pub cseq: u32,
    pub to_tag: Option<&'a str>,
    pub transport: Transport,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, branch: &'a str) -> Self {
        Req { method, branch, cseq: 1, to_tag: None, transport: Transport::Udp }
    }

    pub fn cseq(mut self, cseq: u32) -> Self {
        self.cseq = cseq;
        self
    }

    pub fn with_to_tag(mut self, tag: &'a str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    pub fn tcp(mut self) -> Self {
        self.transport = Transport::Tcp;
        self
    }

    pub fn text(&self) -> String {
        let to_tag = self.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let branch =
            if self.branch.is_empty() { String::new() } else { format!(";branch={}", self.branch) };
        format!(
            "{method} sip:ivr@192.0.2.10 SIP/2.0\r\n\
             Via: SIP/2.0/{transport} 198.51.100.7:5060{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag=from1\r\n\
             To: <sip:ivr@192.0.2.10>{to_tag}\r\n\
             Call-ID: call-1@198.51.100.7\r\n\
             CSeq: {cseq} {method}\r\n\
             Route: <sip:proxy.example.com;lr>\r\n\
             Contact: <sip:alice@198.51.100.7:5060>\r\n\
             Content-Length: 0\r\n\r\n",
            method = self.method,
            transport = self.transport,
            cseq = self.cseq,
        )
    }

    pub fn build(&self) -> rsip::Request {
        parse_request(&self.text())
    }
}

pub(super) fn parse_request(text: &str) -> rsip::Request {
    match rsip::SipMessage::try_from(text) {
        Ok(rsip::SipMessage::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

/// The response a UAS would send to `request`, with To tag `uas1`.
pub(super) fn answer(request: &rsip::Request, status: u16) -> rsip::Response {
    response_to(request, status, Some("uas1"))
}

pub(super) fn status(transmit: &Transmit) -> Option<u16> {
    match &transmit.message {
        rsip::SipMessage::Response(r) => Some(r.status_code.code()),
        rsip::SipMessage::Request(_) => None,
    }
}

pub(super) fn method(transmit: &Transmit) -> Option<rsip::Method> {
    match &transmit.message {
        rsip::SipMessage::Request(r) => Some(r.method),
        rsip::SipMessage::Response(_) => None,
    }
}

pub(super) fn header<'a>(headers: &'a rsip::Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| match (h, name) {
        (Header::Via(v), "Via") => Some(v.value()),
        (Header::To(v), "To") => Some(v.value()),
        (Header::From(v), "From") => Some(v.value()),
        (Header::CSeq(v), "CSeq") => Some(v.value()),
        (Header::CallId(v), "Call-ID") => Some(v.value()),
        (Header::Route(v), "Route") => Some(v.value()),
        _ => None,
    })
}

/// A layer driven in virtual time.
pub(super) struct Harness {
    pub layer: TransactionLayer,
    pub t0: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_layer(TransactionLayer::new(TimerConfig { t1: T1, t2: T2, t4: T4 }))
    }

    pub fn with_layer(layer: TransactionLayer) -> Self {
        let t0 = Instant::now();
        Harness { layer, t0, now: t0 }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.layer.poll_transmit()).collect()
    }

    pub fn events(&mut self) -> Vec<TransactionEvent> {
        std::iter::from_fn(|| self.layer.poll_event()).collect()
    }

    /// Fires every timer up to `t0 + until`; returns what was sent, with when.
    pub fn run_until(&mut self, until: Duration) -> Vec<(Duration, Transmit)> {
        let end = self.t0 + until;
        let mut sent = Vec::new();
        while let Some(deadline) = self.layer.poll_timeout().filter(|d| *d <= end) {
            assert!(deadline >= self.now, "deadline in the past");
            self.now = deadline;
            self.layer.handle_timeout(deadline);
            for transmit in self.transmits() {
                sent.push((self.elapsed(), transmit));
            }
        }
        self.now = self.now.max(end);
        sent
    }
}

/// Times at which `sent` holds a copy of messages for which `pick` is true.
pub(super) fn times(
    sent: &[(Duration, Transmit)],
    pick: impl Fn(&Transmit) -> bool,
) -> Vec<Duration> {
    sent.iter().filter(|(_, t)| pick(t)).map(|(at, _)| *at).collect()
}

//! A client layer and a server layer wired through an in-memory lossy network, in virtual
//! time: an INVITE (with its ACK) and a BYE complete despite the first packets being lost.

use std::collections::BTreeMap;

use super::*;
use crate::sip::transaction::{TransactionId, new_branch};

const LATENCY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Uac,
    Uas,
}

/// Packets in flight, as bytes, so every message also survives serialising and re-parsing.
struct Network {
    in_flight: BTreeMap<(Instant, u64), (Side, Peer, String)>,
    seq: u64,
    to_drop: usize,
    dropped: usize,
    delivered: usize,
}

impl Network {
    fn send(&mut self, now: Instant, to: Side, from: Peer, message: &rsip::SipMessage) {
        if self.dropped < self.to_drop {
            self.dropped += 1;
            return;
        }
        self.seq += 1;
        self.delivered += 1;
        self.in_flight.insert((now + LATENCY, self.seq), (to, from, message.to_string()));
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }
}

struct Pair {
    uac: TransactionLayer,
    uas: TransactionLayer,
    net: Network,
    now: Instant,
    uac_addr: Peer,
    uas_addr: Peer,
}

impl Pair {
    fn new(to_drop: usize, transport: Transport) -> Self {
        let config = TimerConfig { t1: T1, t2: T2, t4: T4 };
        Pair {
            uac: TransactionLayer::new(config),
            uas: TransactionLayer::new(config),
            net: Network { in_flight: BTreeMap::new(), seq: 0, to_drop, dropped: 0, delivered: 0 },
            now: Instant::now(),
            uac_addr: peer("10.0.0.1:5060", transport),
            uas_addr: peer("10.0.0.2:5060", transport),
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.uac.poll_transmit() {
            assert_eq!(t.peer, self.uas_addr);
            self.net.send(self.now, Side::Uas, self.uac_addr, &t.message);
        }
        while let Some(t) = self.uas.poll_transmit() {
            assert_eq!(t.peer, self.uac_addr, "responses go back to the source");
            self.net.send(self.now, Side::Uac, self.uas_addr, &t.message);
        }
    }

    /// Advances to the next delivery or timer; false when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.flush();
        let next = [self.net.next_delivery(), self.uac.poll_timeout(), self.uas.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(entry) = self.net.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, from, bytes) = entry.remove();
            let layer = match to {
                Side::Uac => &mut self.uac,
                Side::Uas => &mut self.uas,
            };
            match rsip::SipMessage::try_from(bytes.as_str()) {
                Ok(rsip::SipMessage::Request(r)) => layer.handle_request(self.now, r, from),
                Ok(rsip::SipMessage::Response(r)) => layer.handle_response(self.now, r, from),
                Err(e) => panic!("our own message does not parse: {e}\n{bytes}"),
            }
        }
        self.uac.handle_timeout(self.now);
        self.uas.handle_timeout(self.now);
        true
    }
}

fn uac_request(
    method: &str,
    cseq: u32,
    to_tag: Option<&str>,
    transport: Transport,
) -> rsip::Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse_request(&format!(
        "{method} sip:ivr@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 10.0.0.1:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@10.0.0.1>;tag=uac1\r\n\
         To: <sip:ivr@10.0.0.2>{to_tag}\r\n\
         Call-ID: pair-call@10.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        branch = new_branch(),
    ))
}

#[derive(Debug, Default)]
struct Outcome {
    uas_requests: Vec<rsip::Method>,
    uas_acks: usize,
    uac_finals: Vec<(rsip::Method, u16)>,
    timeouts: usize,
    dropped: usize,
    delivered: usize,
    end: Duration,
}

fn run_call(to_drop: usize, transport: Transport) -> Outcome {
    let mut pair = Pair::new(to_drop, transport);
    let t0 = pair.now;
    let mut out = Outcome::default();
    let invite = uac_request("INVITE", 1, None, transport);
    let invite_id = pair.uac.send_request(pair.now, invite, pair.uas_addr).expect("invite");
    let mut bye_id: Option<TransactionId> = None;

    while pair.step() {
        assert!(pair.now - t0 < Duration::from_secs(300), "the call never settles");
        // The UAS user: answers INVITE with 200, BYE with 200.
        while let Some(event) = pair.uas.poll_event() {
            match event {
                TransactionEvent::Request { id, request, .. } => {
                    out.uas_requests.push(request.method);
                    let response = answer(&request, 200);
                    pair.uas.respond(pair.now, &id, response).expect("respond");
                }
                TransactionEvent::Ack { .. } => out.uas_acks += 1,
                TransactionEvent::Timeout { .. } => out.timeouts += 1,
                other => panic!("unexpected at the UAS: {other:?}"),
            }
        }
        // The UAC user: ACKs every 2xx to the INVITE (the dialog layer's job), then hangs up.
        while let Some(event) = pair.uac.poll_event() {
            match event {
                TransactionEvent::Response { id, response } => {
                    let code = response.status_code.code();
                    if code < 200 {
                        continue;
                    }
                    if id == invite_id {
                        out.uac_finals.push((rsip::Method::Invite, code));
                        let ack = uac_request("ACK", 1, Some("uas1"), transport);
                        pair.net.send(pair.now, Side::Uas, pair.uac_addr, &ack.into());
                        if bye_id.is_none() {
                            let bye = uac_request("BYE", 2, Some("uas1"), transport);
                            bye_id = Some(
                                pair.uac.send_request(pair.now, bye, pair.uas_addr).expect("bye"),
                            );
                        }
                    } else if Some(&id) == bye_id.as_ref() {
                        out.uac_finals.push((rsip::Method::Bye, code));
                    }
                }
                TransactionEvent::Timeout { .. } => out.timeouts += 1,
                other => panic!("unexpected at the UAC: {other:?}"),
            }
        }
    }
    assert!(pair.uac.is_empty() && pair.uas.is_empty(), "all transactions ended");
    out.end = pair.now - t0;
    out.dropped = pair.net.dropped;
    out.delivered = pair.net.delivered;
    out
}

#[test]
fn invite_and_bye_complete_through_loss() {
    for to_drop in [0, 1, 2, 3, 4, 6] {
        let out = run_call(to_drop, Transport::Udp);
        assert_eq!(out.timeouts, 0, "drop {to_drop}: {out:?}");
        assert_eq!(out.dropped, to_drop);
        assert_eq!(
            out.uas_requests,
            vec![rsip::Method::Invite, rsip::Method::Bye],
            "drop {to_drop}: each request reaches the user once"
        );
        assert!(out.uas_acks >= 1, "drop {to_drop}: the ACK got through");
        assert_eq!(out.uac_finals.first(), Some(&(rsip::Method::Invite, 200)), "drop {to_drop}");
        assert_eq!(out.uac_finals.last(), Some(&(rsip::Method::Bye, 200)), "drop {to_drop}");
        assert!(out.end <= Duration::from_secs(64), "drop {to_drop}: ended at {:?}", out.end);
    }
}

#[test]
fn without_loss_each_side_sends_each_message_once() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let out = run_call(0, transport);
        // INVITE, 100, 200, ACK, BYE, 200.
        assert_eq!(out.delivered, 6, "{transport}: {out:?}");
        assert_eq!(out.uas_acks, 1);
        assert_eq!(out.timeouts, 0);
        assert_eq!(out.uac_finals, vec![(rsip::Method::Invite, 200), (rsip::Method::Bye, 200)]);
    }
}

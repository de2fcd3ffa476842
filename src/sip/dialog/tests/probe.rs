//! OPTIONS probes of transfer targets, in virtual time.

use super::harness::*;
use crate::sip::dialog::{ProbeId, UaAction};
use crate::sip::header_text as ht;
use crate::sip::transaction::TransactionEvent;

fn probed(actions: &[UaAction]) -> Vec<(ProbeId, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            UaAction::Probed { id, status } => Some((*id, *status)),
            _ => None,
        })
        .collect()
}

fn client_id(request: &rsip::Request) -> crate::sip::transaction::TransactionId {
    let via = header(&request.headers, "Via").unwrap();
    tid(&format!("c1:OPTIONS {}", ht::header_param(&via, "branch").unwrap()))
}

#[test]
fn a_probe_sends_options_and_reports_the_final_status() {
    let mut b = Bench::new(config());
    let id = b.ua.probe(b.now, "sip:agent@192.0.2.20:5080", None).unwrap();
    let [(options, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(options.method, rsip::Method::Options);
    assert_eq!(options.uri.to_string(), "sip:agent@192.0.2.20:5080");
    assert_eq!(dest.addr, "192.0.2.20:5080".parse().unwrap());
    assert_eq!(header(&options.headers, "To").unwrap(), "<sip:agent@192.0.2.20:5080>");
    assert!(header(&options.headers, "From").unwrap().contains(";tag="));
    assert!(header(&options.headers, "CSeq").unwrap().ends_with("OPTIONS"));
    assert_eq!(b.ua.call_count(), 0, "a probe is no call");

    let trying = response_to(&options, 100, "", "");
    let out = b.event(TransactionEvent::Response { id: client_id(&options), response: trying });
    assert!(probed(&out).is_empty(), "a provisional answer is not the result");
    let ok = response_to(&options, 200, "", "");
    let out = b.event(TransactionEvent::Response { id: client_id(&options), response: ok });
    assert_eq!(probed(&out), vec![(id, 200)]);
    // A stray retransmission of the answer reports nothing more.
    let again = response_to(&options, 200, "", "");
    assert!(
        probed(&b.event(TransactionEvent::Response { id: client_id(&options), response: again }))
            .is_empty()
    );
}

#[test]
fn a_probe_without_an_answer_reports_408() {
    let mut b = Bench::new(config());
    let first = b.ua.probe(b.now, "sip:a@192.0.2.20", None).unwrap();
    let second = b.ua.probe(b.now, "sip:b@192.0.2.21", None).unwrap();
    assert_ne!(first, second);
    let sent = sent(&b.drain());
    let out = b.event(TransactionEvent::Timeout { id: client_id(&sent[1].0) });
    assert_eq!(probed(&out), vec![(second, 408)]);
    let busy = response_to(&sent[0].0, 503, "", "");
    let out = b.event(TransactionEvent::Response { id: client_id(&sent[0].0), response: busy });
    assert_eq!(probed(&out), vec![(first, 503)]);
}

#[test]
fn bad_probe_targets_are_refused() {
    let mut b = Bench::new(config());
    assert!(b.ua.probe(b.now, "http://x", None).is_err());
    assert!(b.ua.probe(b.now, "sip:agent@queue.example.com", None).is_err(), "needs resolving");
    assert!(
        b.ua.probe(b.now, "sip:agent@queue.example.com", Some("192.0.2.5:5060".parse().unwrap()))
            .is_ok()
    );
}

#[test]
fn a_probe_that_could_not_be_sent_ends_unanswered() {
    let mut b = Bench::new(config());
    let id = b.ua.probe(b.now, "sip:a@192.0.2.20", None).unwrap();
    let [(options, _)] = sent(&b.drain()).try_into().unwrap();
    let via = header(&options.headers, "Via").unwrap();
    b.ua.probe_not_sent(ht::header_param(&via, "branch").unwrap());
    assert_eq!(probed(&b.drain()), vec![(id, 408)]);
    // Nothing is left to time out.
    assert!(probed(&b.event(TransactionEvent::Timeout { id: client_id(&options) })).is_empty());
}

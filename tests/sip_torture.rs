//! The SIP message layer against the RFC 4475 and RFC 5118 torture corpus, plus a
//! deterministic mutation run (the stable counterpart of the `sip_message` fuzz target).
//!
//! The corpus is read from `$ZENDESK_IVR_SHARED/corpus/sip-torture`, or from
//! `../shared/corpus/sip-torture` relative to the crate root.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::prelude::HeadersExt;
use zendesk_ivr::sip::message::{
    Framed, Limits, MessageError, StreamFramer, error_response, fuzz_one, parse,
};

fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("ZENDESK_IVR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    shared.join("corpus/sip-torture")
}

/// What the message layer must do with a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parses; the layers above answer it.
    Parse,
    /// A request refused here, answered with this status.
    Answer(u16),
    /// A response refused here: dropped, nothing sent back.
    Drop,
}

use Expect::*;

/// Every corpus file and its disposition (RFC 4475 section / RFC 5118 section).
const DISPOSITIONS: &[(&str, Expect)] = &[
    // RFC 4475 3.1.1: valid messages.
    ("rfc4475/wsinv.dat", Parse),
    // Extension methods: rsip 0.4's Method is a closed enum, so the message layer
    // answers 501 itself (RFC 3261 §8.2.1); never 400.
    ("rfc4475/intmeth.dat", Answer(501)),
    ("rfc4475/esc01.dat", Parse),
    ("rfc4475/escnull.dat", Parse),
    ("rfc4475/esc02.dat", Answer(501)),
    ("rfc4475/lwsdisp.dat", Parse),
    ("rfc4475/longreq.dat", Parse),
    ("rfc4475/dblreq.dat", Parse),
    ("rfc4475/semiuri.dat", Parse),
    ("rfc4475/transports.dat", Parse),
    ("rfc4475/mpart01.dat", Parse),
    ("rfc4475/unreason.dat", Parse),
    ("rfc4475/noreason.dat", Parse),
    // RFC 4475 3.1.2: invalid messages.
    ("rfc4475/badinv01.dat", Answer(400)),
    ("rfc4475/clerr.dat", Answer(400)),
    ("rfc4475/ncl.dat", Answer(400)),
    ("rfc4475/scalar02.dat", Answer(400)),
    ("rfc4475/scalarlg.dat", Drop),
    ("rfc4475/quotbal.dat", Answer(400)),
    ("rfc4475/ltgtruri.dat", Answer(400)),
    ("rfc4475/lwsruri.dat", Answer(400)),
    ("rfc4475/lwsstart.dat", Answer(400)),
    ("rfc4475/trws.dat", Answer(400)),
    ("rfc4475/escruri.dat", Answer(400)),
    ("rfc4475/baddate.dat", Answer(400)),
    ("rfc4475/regbadct.dat", Answer(400)),
    ("rfc4475/badaspec.dat", Answer(400)),
    ("rfc4475/baddn.dat", Answer(400)),
    ("rfc4475/badvers.dat", Answer(505)),
    ("rfc4475/mismatch01.dat", Answer(400)),
    ("rfc4475/mismatch02.dat", Answer(400)),
    ("rfc4475/bigcode.dat", Drop),
    // RFC 4475 3.2: transaction layer.
    ("rfc4475/badbranch.dat", Parse),
    // RFC 4475 3.3: application layer. The answers (416, 420, 415, 483, 488) belong to
    // the dialog layer; here the message parses and the relevant headers are readable.
    ("rfc4475/insuf.dat", Answer(400)),
    ("rfc4475/unkscm.dat", Parse),
    ("rfc4475/novelsc.dat", Parse),
    ("rfc4475/unksm2.dat", Parse),
    ("rfc4475/bext01.dat", Parse),
    ("rfc4475/invut.dat", Parse),
    ("rfc4475/regaut01.dat", Parse),
    // RFC 4475 §3.3.9 and §3.3.10 ask for 400: several values in single-value headers
    // (which Call-ID? which CSeq?) and two Content-Lengths (ambiguous framing).
    ("rfc4475/multi01.dat", Answer(400)),
    ("rfc4475/mcl01.dat", Answer(400)),
    ("rfc4475/bcast.dat", Parse),
    ("rfc4475/zeromf.dat", Parse),
    ("rfc4475/cparam01.dat", Parse),
    ("rfc4475/cparam02.dat", Parse),
    ("rfc4475/regescrt.dat", Parse),
    ("rfc4475/sdp01.dat", Parse),
    // RFC 4475 3.4: an RFC 2543 INVITE (no branch, no Content-Length).
    ("rfc4475/inv2543.dat", Parse),
    // RFC 5118.
    ("rfc5118/ipv6-good", Parse),                     // 4.1
    ("rfc5118/ipv6-bad", Answer(400)),                // 4.2: Request-URI without [ ]
    ("rfc5118/port-ambiguous", Parse),                // 4.3: address ...:10:5070, no port
    ("rfc5118/port-unambiguous", Parse),              // 4.4
    ("rfc5118/via-received-param-with-delim", Parse), // 4.5: both forms accepted
    ("rfc5118/via-received-param-no-delim", Parse),   // 4.5
    ("rfc5118/ipv6-in-sdp", Parse),                   // 4.6
    ("rfc5118/mult-ip-in-header", Parse),             // 4.7
    ("rfc5118/mult-ip-in-sdp", Parse),                // 4.8
    ("rfc5118/ipv4-mapped-ipv6", Parse),              // 4.9
    ("rfc5118/ipv6-bug-abnf-3-colons", Parse),        // 4.10: "must tolerate both"
    ("rfc5118/ipv6-correct-abnf-2-colons", Parse),    // 4.10
];

/// Every file of the corpus (README excluded), by path relative to the corpus root.
fn corpus() -> BTreeMap<String, Vec<u8>> {
    let root = corpus_dir();
    let mut files = BTreeMap::new();
    for sub in ["rfc4475", "rfc5118"] {
        let dir = root.join(sub);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading corpus dir {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let name = format!("{sub}/{}", path.file_name().expect("file name").to_string_lossy());
            files.insert(name, std::fs::read(&path).expect("corpus file"));
        }
    }
    files
}

fn file(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).expect("corpus file")
}

#[test]
fn every_corpus_file_has_a_disposition_and_gets_it() {
    let files = corpus();
    assert!(files.len() >= 61, "corpus looks incomplete: {} files", files.len());
    let table: BTreeMap<&str, Expect> = DISPOSITIONS.iter().copied().collect();
    assert_eq!(table.len(), DISPOSITIONS.len(), "duplicate entries in the table");
    for name in table.keys() {
        assert!(files.contains_key(*name), "{name} is in the table but not in the corpus");
    }
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        let Some(expect) = table.get(name.as_str()) else {
            failures.push(format!("{name}: no disposition in the table"));
            continue;
        };
        let result = parse(bytes, &Limits::default());
        let ok = match (expect, &result) {
            (Parse, Ok(_)) => true,
            (Answer(status), Err(err)) => {
                let answer = error_response(bytes, err).map(|r| u16::from(r.status_code));
                err.status() == *status && answer == Some(*status)
            }
            (Drop, Err(err)) => error_response(bytes, err).is_none(),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {result:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn request(name: &str) -> rsip::Request {
    match parse(&file(name), &Limits::default()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn wsinv_reads_through_folding_whitespace_and_compact_forms() {
    let r = request("rfc4475/wsinv.dat");
    assert_eq!(r.method, rsip::Method::Invite);
    let to = r.to_header().unwrap().typed().unwrap();
    assert_eq!(to.tag().map(|t| t.to_string()), Some("1918181833n".into()));
    let from = r.from_header().unwrap().typed().unwrap();
    assert_eq!(from.tag().map(|t| t.to_string()), Some("98asjd8".into()));
    let cseq = r.cseq_header().unwrap().typed().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, rsip::Method::Invite));
    assert_eq!(r.max_forwards_header().unwrap().num().unwrap(), 68);
    let vias: Vec<_> = r
        .headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Via(v) => Some(v.typed().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch().unwrap().to_string(), "390skdjuw");
    assert_eq!(vias[1].transport, rsip::Transport::Tcp);
    assert_eq!(vias[2].branch().unwrap().to_string(), "z9hG4bK30239");
    assert_eq!(r.body.len(), 150);
    assert!(r.contact_header().unwrap().typed().is_ok());
}

#[test]
fn datagram_body_is_cut_to_content_length() {
    let r = request("rfc4475/dblreq.dat");
    assert_eq!(r.method, rsip::Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(request("rfc4475/mpart01.dat").body.len(), 553);
    // RFC 2543 INVITE without Content-Length: the body is the rest of the datagram.
    let r = request("rfc4475/inv2543.dat");
    assert!(!r.body.is_empty());
    assert!(r.via_header().unwrap().typed().unwrap().branch().is_none());
}

#[test]
fn application_layer_messages_expose_what_the_dialog_layer_needs() {
    assert_eq!(request("rfc4475/zeromf.dat").max_forwards_header().unwrap().num().unwrap(), 0);
    let bext = request("rfc4475/bext01.dat");
    let require = bext
        .headers
        .iter()
        .find_map(|h| match h {
            rsip::Header::Require(r) => Some(r.value().to_owned()),
            _ => None,
        })
        .unwrap();
    assert!(require.contains("nothingSupportsThis"));
    let invut = request("rfc4475/invut.dat");
    let ct = invut
        .headers
        .iter()
        .find_map(|h| match h {
            rsip::Header::ContentType(c) => Some(c.value().to_owned()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ct, "application/unknownformat");
    for name in ["rfc4475/unkscm.dat", "rfc4475/novelsc.dat"] {
        let r = request(name);
        assert!(
            !matches!(r.uri.scheme, Some(rsip::Scheme::Sip | rsip::Scheme::Sips)),
            "{name}: {:?}",
            r.uri.scheme
        );
    }
    let tel_like = request("rfc4475/cparam01.dat");
    assert!(tel_like.contact_header().unwrap().typed().is_ok());
}

#[test]
fn ipv6_request_uris_are_built_with_the_address() {
    let r = request("rfc5118/port-unambiguous");
    let hp = &r.uri.host_with_port;
    assert_eq!(hp.host, rsip::Host::IpAddr("2001:db8::10".parse().unwrap()));
    assert_eq!(hp.port.map(|p| *p.value()), Some(5070));
    let r = request("rfc5118/port-ambiguous");
    assert_eq!(r.uri.host_with_port.host, rsip::Host::IpAddr("2001:db8::10:5070".parse().unwrap()));
    assert!(r.uri.host_with_port.port.is_none());
}

#[test]
fn error_responses_echo_the_request_and_say_why() {
    let bytes = file("rfc4475/badvers.dat");
    let err = parse(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(err, MessageError::VersionNotSupported);
    let resp = error_response(&bytes, &err).unwrap();
    assert_eq!(u16::from(resp.status_code.clone()), 505);
    assert_eq!(resp.call_id_header().unwrap().value(), "badvers.31417@c.example.com");
    assert_eq!(resp.cseq_header().unwrap().value(), "1 OPTIONS");
    assert!(resp.via_header().unwrap().value().contains("branch=z9hG4bKkdjuw"));
    let to = resp.to_header().unwrap().value().to_owned();
    assert!(to.contains(";tag="), "{to}");
    // Retransmissions get the same tag.
    let again = error_response(&bytes, &err).unwrap();
    assert_eq!(again.to_header().unwrap().value(), to);
    let text = resp.to_string();
    assert!(text.contains("Warning: 399 zendesk-ivr \""), "{text}");
    assert!(text.contains("Content-Length: 0"), "{text}");

    // The answer to a request without a usable Via is no answer.
    let no_via = b"OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n";
    let err = parse(no_via, &Limits::default()).unwrap_err();
    assert_eq!(err, MessageError::MissingHeader("Via"));
    assert!(error_response(no_via, &err).is_none());
    // Never an answer to an ACK.
    let ack = b"ACK sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
    let err = parse(ack, &Limits::default()).unwrap_err();
    assert!(error_response(ack, &err).is_none());
}

#[test]
fn corpus_frames_over_a_stream() {
    // Messages with a Content-Length and a header end frame; several back to back.
    let one = file("rfc4475/esc01.dat");
    let mut stream = Vec::new();
    for _ in 0..3 {
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(&one);
    }
    let mut framer = StreamFramer::new(Limits::default());
    let mut got = Vec::new();
    for chunk in stream.chunks(7) {
        framer.push(chunk);
        while let Some(next) = framer.next_message() {
            got.push(next.expect("frames"));
        }
    }
    let messages: Vec<_> = got
        .iter()
        .filter_map(|f| match f {
            Framed::Message(m) => Some(m),
            Framed::Ping => None,
        })
        .collect();
    assert_eq!(got.iter().filter(|f| **f == Framed::Ping).count(), 3);
    assert_eq!(messages.len(), 3);
    for m in messages {
        assert_eq!(m, &one);
        assert!(parse(m, &Limits::default()).is_ok());
    }
}

/// A small deterministic generator (xorshift), so the mutation run is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\x00\r\n \t,;:=\"<>[]@%\\\x80\xff";

/// The stable smoke run of the fuzz body: every truncation of every corpus file, byte
/// flips, duplicated and dropped lines. It proves no panic; `fuzz_one` also frames.
#[test]
fn mutations_of_the_corpus_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0usize;
    for bytes in corpus().values() {
        for cut in 0..=bytes.len() {
            fuzz_one(&bytes[..cut]);
            runs += 1;
        }
        for _ in 0..200 {
            let mut m = bytes.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(m.len());
                m[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            fuzz_one(&m);
            runs += 1;
        }
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        for i in 0..lines.len() {
            let mut dup = Vec::new();
            let mut drop = Vec::new();
            for (j, l) in lines.iter().enumerate() {
                dup.extend_from_slice(l);
                dup.push(b'\n');
                if j == i {
                    dup.extend_from_slice(l);
                    dup.push(b'\n');
                } else {
                    drop.extend_from_slice(l);
                    drop.push(b'\n');
                }
            }
            fuzz_one(&dup);
            fuzz_one(&drop);
            runs += 2;
        }
    }
    assert!(runs > 10_000, "only {runs} runs");
}

const HEAD: &str = "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";

fn timed(what: &str, bytes: &[u8]) -> Result<rsip::SipMessage, MessageError> {
    let start = Instant::now();
    let result = parse(bytes, &Limits::default());
    fuzz_one(bytes);
    // Generous: the point is that work stays linear and bounded, not a benchmark.
    assert!(start.elapsed() < Duration::from_secs(5), "{what} took {:?}", start.elapsed());
    result
}

#[test]
fn hostile_sizes_are_refused_early() {
    let many = format!("{HEAD}{}Content-Length: 0\r\n\r\n", "X-A: b\r\n".repeat(5_000));
    assert_eq!(timed("many headers", many.as_bytes()), Err(MessageError::TooManyHeaders));

    let commas =
        format!("{HEAD}Via: {}\r\nContent-Length: 0\r\n\r\n", vec!["SIP/2.0/UDP h"; 400].join(","));
    assert_eq!(timed("comma-joined Vias", commas.as_bytes()), Err(MessageError::TooManyHeaders));

    let long = format!("{HEAD}Subject: {}\r\nContent-Length: 0\r\n\r\n", "a".repeat(10_000));
    assert_eq!(timed("long line", long.as_bytes()), Err(MessageError::LineTooLong));

    let folded = format!("{HEAD}Subject: a{}\r\nContent-Length: 0\r\n\r\n", "\r\n b".repeat(5_000));
    assert_eq!(timed("folded line", folded.as_bytes()), Err(MessageError::LineTooLong));

    let huge = vec![b'a'; 70_000];
    assert_eq!(timed("huge", &huge), Err(MessageError::TooLarge));
    let err = MessageError::TooLarge;
    assert_eq!(err.status(), 513);

    let quotes = format!("{HEAD}Contact: {}\r\nContent-Length: 0\r\n\r\n", "\"".repeat(7_000));
    assert!(timed("quotes", quotes.as_bytes()).is_err());

    let ok = format!("{HEAD}Content-Length: 0\r\n\r\n");
    assert!(timed("baseline", ok.as_bytes()).is_ok());
}

//! How far rsip 0.4 gets on its own, measured over the RFC 4475/5118 torture corpus and
//! the real-world phone corpus, against the message layer we ship (normalise, grammar
//! check, rsip's typed check on a stand-in). The README's rsip section quotes the table
//! this prints (`cargo test --test sip_rsip_options -- --nocapture`).
//!
//! - "rsip alone": `rsip::SipMessage::try_from` on the bytes, then the typed Via, From,
//!   To, CSeq and Contact the layers above would read.
//! - "rsip typed, no stand-in": our normalising pass and grammar check, then rsip's typed
//!   parsers on the original header text (what the message layer did before quoted
//!   parameter values were handled), tolerating what it already tolerated (IPv6, URI
//!   headers, non-SIP schemes).
//! - "ours": `zendesk_ivr::sip::message::parse`.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::prelude::HeadersExt;
use zendesk_ivr::sip::message::{Limits, parse};

fn files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let torture = common::shared_dir().join("corpus/sip-torture");
    for sub in ["rfc4475", "rfc5118"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(torture.join(sub))
            .expect("torture corpus")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            let name = format!("{sub}/{}", path.file_name().expect("name").to_string_lossy());
            out.push((name, std::fs::read(&path).expect("read")));
        }
    }
    let phones = common::manifest_dir().join("tests/corpus/phones");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&phones)
        .expect("phone corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    names.sort();
    let vars: HashMap<&str, String> = [
        ("ip", "127.0.0.1"),
        ("port", "26070"),
        ("ivr", "127.0.0.1:5080"),
        ("rtp", "31000"),
        ("rtcp", "31001"),
        ("video", "31002"),
        ("branch", "z9hG4bKmeasure1"),
        ("call_id", "measure-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    for path in names {
        let name = format!("phones/{}", path.file_name().expect("name").to_string_lossy());
        let template = std::fs::read_to_string(&path).expect("read");
        out.push((name, common::sip_phone::fill(&template, &vars).into_bytes()));
    }
    out
}

fn rsip_alone(bytes: &[u8]) -> Result<(), String> {
    let m = rsip::SipMessage::try_from(bytes).map_err(|e| format!("message: {e}"))?;
    m.via_header().map_err(|e| e.to_string())?.typed().map_err(|e| format!("Via: {e}"))?;
    m.from_header().map_err(|e| e.to_string())?.typed().map_err(|e| format!("From: {e}"))?;
    m.to_header().map_err(|e| e.to_string())?.typed().map_err(|e| format!("To: {e}"))?;
    m.cseq_header().map_err(|e| e.to_string())?.typed().map_err(|e| format!("CSeq: {e}"))?;
    if let Ok(c) = m.contact_header()
        && c.value() != "*"
    {
        c.typed().map_err(|e| format!("Contact: {e}"))?;
    }
    Ok(())
}

/// What the message layer tolerated before: values rsip cannot read at all.
fn tolerated(value: &str) -> bool {
    value.contains(['[', '?']) || !zendesk_ivr::sip::header_text::uri_part(value).starts_with("sip")
}

/// rsip's typed parsers on the original text of a message ours accepted. The header that
/// fails, if any.
fn typed_without_stand_in(m: &rsip::SipMessage) -> Option<(&'static str, String)> {
    fn check<'a, T: ToTypedHeader<'a>>(
        name: &'static str,
        h: &T,
    ) -> Option<(&'static str, String)> {
        (h.typed().is_err() && !tolerated(h.value())).then(|| (name, h.value().to_owned()))
    }
    let via = m.via_header().ok()?;
    if via.typed().is_err() && !via.value().contains('[') {
        return Some(("Via", via.value().to_owned()));
    }
    check("From", m.from_header().ok()?).or_else(|| check("To", m.to_header().ok()?)).or_else(
        || m.contact_header().ok().filter(|c| c.value() != "*").and_then(|c| check("Contact", c)),
    )
}

#[test]
fn rsip_alone_versus_the_message_layer() {
    let files = files();
    let (mut torture, mut phones) = ([0usize; 4], [0usize; 4]);
    println!("{:<44} {:<8} {:<8} {:<8}", "message", "ours", "rsip", "no-stand-in");
    for (name, bytes) in &files {
        let ours = parse(bytes, &Limits::default());
        let alone = rsip_alone(bytes);
        let without = ours.as_ref().ok().and_then(typed_without_stand_in);
        if let Some((header, value)) = &without {
            // Only quoted parameter values needed the stand-in.
            assert!(
                value.contains("=\""),
                "{name}: {header} fails rsip without a quoted value: {value}"
            );
        }
        let counts = if name.starts_with("phones/") { &mut phones } else { &mut torture };
        counts[0] += 1;
        if ours.is_ok() {
            counts[1] += 1;
            counts[2] += usize::from(alone.is_ok());
            counts[3] += usize::from(without.is_none());
        }
        println!(
            "{name:<44} {:<8} {:<8} {:<8}",
            if ours.is_ok() { "read" } else { "refused" },
            if alone.is_ok() { "read" } else { "refused" },
            match (&ours, &without) {
                (Err(_), _) => "-",
                (Ok(_), None) => "read",
                (Ok(_), Some(_)) => "refused",
            }
        );
    }
    for (label, c) in [("torture", torture), ("phones", phones)] {
        println!(
            "{label}: {} files; ours reads {}; of those, rsip alone reads {} and rsip typed without the stand-in {}",
            c[0], c[1], c[2], c[3]
        );
    }
    assert_eq!(phones[1], phones[0], "ours reads every phone message");
    assert!(phones[2] < phones[1], "rsip alone reads fewer phone messages than ours");
}

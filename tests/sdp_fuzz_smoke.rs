//! The stable counterpart of the `sdp` cargo-fuzz target: `sdp::fuzz_one` (parse, then
//! answer) over every SDP body in the torture corpus, every truncation of it, and seeded
//! byte flips. Nothing may panic.

mod common;

use zendesk_ivr::sdp;

fn bodies() -> Vec<Vec<u8>> {
    let root = common::shared_dir().join("corpus/sip-torture");
    let mut out = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        let entries =
            std::fs::read_dir(root.join(sub)).expect("torture corpus (ZENDESK_IVR_SHARED)");
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).expect("readable corpus file");
            let body = find_body(&bytes);
            if body.windows(2).any(|w| w == b"v=") {
                out.push(body.to_vec());
            }
        }
    }
    out
}

fn find_body(bytes: &[u8]) -> &[u8] {
    for sep in [&b"\r\n\r\n"[..], &b"\n\n"[..]] {
        if let Some(at) = bytes.windows(sep.len()).position(|w| w == sep) {
            return &bytes[at + sep.len()..];
        }
    }
    &[]
}

/// xorshift: deterministic, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sdp_bodies_and_their_mutations_never_panic() {
    let bodies = bodies();
    assert!(bodies.len() >= 10, "the corpus has SDP bodies: found {}", bodies.len());
    let mut parsed = 0;
    let mut rng = 0x5eed_u64;
    for body in &bodies {
        if std::str::from_utf8(body).ok().and_then(|t| sdp::parse(t).ok()).is_some() {
            parsed += 1;
        }
        for cut in 0..body.len() {
            sdp::fuzz_one(&body[..cut]);
        }
        for _ in 0..300 {
            let mut mutant = body.clone();
            for _ in 0..(next(&mut rng) % 4 + 1) {
                let at = (next(&mut rng) as usize) % mutant.len().max(1);
                if let Some(byte) = mutant.get_mut(at) {
                    *byte = next(&mut rng) as u8;
                }
            }
            sdp::fuzz_one(&mutant);
        }
    }
    assert!(parsed * 2 >= bodies.len(), "most corpus SDP parses: {parsed}/{}", bodies.len());
}

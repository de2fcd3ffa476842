//! The TCP stream framer fed the same bytes whole and in chunks whose sizes the input
//! chooses: framing must not depend on how the stream was split.
//!
//! Input: `stream NUL sizes`; the bytes after the last NUL are the chunk sizes (1-256,
//! cycled). Without a NUL the whole input is the stream, cut 1, 2, 3, ... bytes at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zendesk_ivr::sip::message::{Framed, Limits, MessageError, StreamFramer};

#[derive(Debug, PartialEq)]
enum Unit {
    Message(Vec<u8>),
    Ping,
    Error(MessageError),
}

/// Drains what the framer has; true once it failed.
fn drain(framer: &mut StreamFramer, out: &mut Vec<Unit>, budget: usize) -> bool {
    while let Some(next) = framer.next_message() {
        out.push(match next {
            Ok(Framed::Message(bytes)) => Unit::Message(bytes),
            Ok(Framed::Ping) => Unit::Ping,
            Err(err) => Unit::Error(err),
        });
        assert!(out.len() <= budget, "more units than the stream can hold");
        if matches!(out.last(), Some(Unit::Error(_))) {
            return true;
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let (stream, sizes) = match data.iter().rposition(|&b| b == 0) {
        Some(nul) if nul + 1 < data.len() => (&data[..nul], &data[nul + 1..]),
        _ => (data, &[][..]),
    };
    // Small limits so that the size bounds are reached by short inputs too.
    let limits = Limits { max_message_bytes: 2048, max_line_len: 512, ..Limits::default() };
    let budget = stream.len() / 2 + 2;

    let mut whole = StreamFramer::new(limits);
    whole.push(stream);
    let mut expected = Vec::new();
    let whole_failed = drain(&mut whole, &mut expected, budget);

    let mut chunked = StreamFramer::new(limits);
    let mut got = Vec::new();
    let mut rest = stream;
    let mut failed = false;
    let mut step = 0usize;
    while !rest.is_empty() && !failed {
        let size = match sizes.get(step % sizes.len().max(1)) {
            Some(&s) => usize::from(s) + 1,
            None => step % 7 + 1,
        };
        step += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunked.push(chunk);
        rest = tail;
        failed = drain(&mut chunked, &mut got, budget);
        assert!(
            chunked.buffered() <= limits.max_message_bytes + size,
            "the framer holds more than a message"
        );
    }
    assert_eq!(got, expected, "framing depends on how the stream was split");
    assert_eq!(failed, whole_failed);
    if !failed {
        assert_eq!(chunked.buffered(), whole.buffered(), "different leftovers");
    }
});

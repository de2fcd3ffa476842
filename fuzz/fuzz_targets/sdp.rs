//! SDP parsing and offer/answer on arbitrary bytes: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zendesk_ivr::sdp::fuzz_one(data);
});

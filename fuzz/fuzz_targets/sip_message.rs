//! Fuzz the SIP message layer: datagram parse, error answers, and stream framing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zendesk_ivr::sip::message::fuzz_one(data);
});

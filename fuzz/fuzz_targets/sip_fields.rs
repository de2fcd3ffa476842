//! The transaction layer's Via/From/To/CSeq scanners and the `received`/`rport` stamp on
//! the top Via, on parsed messages and on raw header values the parser would refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zendesk_ivr::sip::transaction::fuzz_fields(data);
});

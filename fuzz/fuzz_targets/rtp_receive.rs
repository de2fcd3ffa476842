//! One call's media receive path in virtual time: RTP (audio and RFC 4733 telephone-event
//! packets, well-formed and raw) from the signalled source and from others, RTCP,
//! renegotiation and timer advances, in the order the input chooses. Checks: no panic,
//! reported digits are DTMF digits, no timer stays due after it fired.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use zendesk_ivr::media::receive::fuzzing::{MAX_DATAGRAM, MediaChoice, ReceiveHarness};

const AUDIO_PT: u8 = 0;
const EVENT_PT: u8 = 101;

fn media(u: &mut Unstructured) -> Result<MediaChoice> {
    Ok(MediaChoice {
        codec: u.int_in_range(0..=2)?,
        payload_type: if u.ratio(7, 8)? { AUDIO_PT } else { u.arbitrary()? },
        telephone_event: if u.ratio(3, 4)? { Some(EVENT_PT) } else { u.arbitrary()? },
        remote: if u.ratio(7, 8)? { Some(0) } else { u.arbitrary()? },
        direction: u.int_in_range(0..=3)?,
    })
}

/// An RTP header (version 2, no CSRC) and payload.
fn rtp(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, (u8::from(marker) << 7) | (pt & 0x7f)];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

fn run(u: &mut Unstructured) -> Result<()> {
    let Some(mut call) = ReceiveHarness::new(media(u)?) else { return Ok(()) };
    let mut seq = 0u16;
    for _ in 0..u.int_in_range(0..=512)? {
        if u.is_empty() {
            break;
        }
        seq = seq.wrapping_add(1);
        match u.int_in_range(0..=6)? {
            0 => {
                let from = u.int_in_range(0..=2)?;
                let len = u.int_in_range(0..=MAX_DATAGRAM + 16)?;
                call.rtp(from, u.bytes(len.min(u.len()))?);
            }
            1 => {
                let from = if u.ratio(7, 8)? { 0 } else { u.int_in_range(0..=2)? };
                let pt = if u.ratio(3, 4)? { AUDIO_PT } else { u.arbitrary()? };
                let len = u.int_in_range(0..=320)?;
                let payload = u.bytes(len.min(u.len()))?.to_vec();
                let ts = u32::from(seq) * 160;
                call.rtp(from, &rtp(u.arbitrary()?, pt, seq, ts, u.int_in_range(1..=2)?, &payload));
            }
            2 => {
                // Telephone events: few SSRCs and timestamps, so that repeats, long-press
                // segments and overlapping presses happen.
                let event: u8 =
                    if u.ratio(7, 8)? { u.int_in_range(0..=16)? } else { u.arbitrary()? };
                let end = u.ratio(1, 3)?;
                let volume: u8 = u.int_in_range(0..=63)?;
                let duration: u16 = u.arbitrary()?;
                let ts: u32 = u32::from(u.int_in_range(0u8..=7)?) * 32_768;
                let mut payload = vec![event, (u8::from(end) << 7) | volume];
                payload.extend_from_slice(&duration.to_be_bytes());
                let ssrc = u.int_in_range(1..=2)?;
                call.rtp(0, &rtp(u.arbitrary()?, EVENT_PT, seq, ts, ssrc, &payload));
            }
            3 => {
                let len = u.int_in_range(0..=1500)?;
                call.rtcp(u.bytes(len.min(u.len()))?);
            }
            4 => call.advance(Duration::from_millis(u.int_in_range(0..=400)?)),
            5 => call.advance(Duration::from_millis(u.int_in_range(0..=20_000)?)),
            _ => call.renegotiate(media(u)?),
        }
    }
    call.end();
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

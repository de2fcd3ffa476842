//! Telephone events across the bridge: mapping, durations and in-band tones.

use super::*;

fn event_packet(
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    digit_event: u8,
    end: bool,
    duration: u16,
) -> Vec<u8> {
    let payload = TelephoneEvent { event: digit_event, end, volume: 10, duration }.to_bytes();
    rtp(pt, seq, ts, ssrc, !end && duration <= 160, &payload)
}

/// One key press as a phone sends it: updates every 20 ms, three end packets sharing a
/// sequence number (as SIPp does).
fn key_press(pt: u8, first_seq: u16, ts: u32, event: u8, updates: u16, step: u16) -> Vec<Vec<u8>> {
    let mut packets: Vec<_> = (1..=updates)
        .map(|i| event_packet(pt, first_seq + i - 1, ts, 5, event, false, step * i))
        .collect();
    for _ in 0..3 {
        packets.push(event_packet(
            pt,
            first_seq + updates,
            ts,
            5,
            event,
            true,
            step * (updates + 1),
        ));
    }
    packets
}

#[test]
fn telephone_events_pass_through_with_payload_type_mapping() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Pcmu, 0, Some(96), B_REMOTE),
    );
    let audio = [0xFFu8; 160];
    send(&mut b, now, Leg::A, &rtp(0, 1, 1000, 5, false, &audio));
    let mut got = Vec::new();
    for packet in key_press(101, 2, 1160, 5, 4, 160) {
        got.extend(send(&mut b, now, Leg::A, &packet));
    }
    assert_eq!(got.len(), 7);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.pt, 96);
        assert_eq!(p.ts, 16160, "every packet of the event keeps its start");
        assert_eq!(p.seq, 501 + i as u16);
        assert_eq!(p.marker, i == 0);
        let ev = TelephoneEvent::parse(&p.payload).expect("event payload");
        assert_eq!(ev.event, 5);
        assert_eq!(ev.end, i >= 4);
        assert_eq!(ev.duration, if i >= 4 { 800 } else { 160 * (i as u16 + 1) });
    }
    // Audio after the press continues on the same timeline.
    let p = send(&mut b, now, Leg::A, &rtp(0, 6, 1160 + 960, 5, false, &audio));
    assert_eq!((p[0].pt, p[0].ts, p[0].seq), (0, 16000 + 160 + 960, 508));
}

#[test]
fn telephone_event_durations_follow_the_far_clock() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Opus, 111, Some(110), B_REMOTE),
    );
    let got: Vec<_> = key_press(101, 1, 0, 11, 2, 400)
        .iter()
        .flat_map(|packet| send(&mut b, now, Leg::A, packet))
        .collect();
    assert_eq!(got.len(), 5);
    let durations: Vec<u16> = got
        .iter()
        .map(|p| {
            assert_eq!(p.pt, 110);
            TelephoneEvent::parse(&p.payload).expect("event").duration
        })
        .collect();
    assert_eq!(durations, vec![2400, 4800, 7200, 7200, 7200]);
}

fn decode_ulaw(packets: &[Parsed]) -> Vec<i16> {
    let mut dec = Decoder::new(CodecName::Pcmu).expect("decoder");
    let mut pcm = Vec::new();
    for p in packets {
        dec.decode_into(&p.payload, &mut pcm).expect("decode");
    }
    pcm
}

#[test]
fn telephone_events_become_inband_tones_on_a_g711_leg_without_them() {
    let mut now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let quiet = [0xFFu8; 160];
    let mut got = Vec::new();
    for i in 0..5u16 {
        got.extend(send(&mut b, now, Leg::A, &rtp(0, i, 160 * u32::from(i), 5, false, &quiet)));
    }
    // '7' for 100 ms (updates of 20 ms), with the phone's audio still flowing: it is
    // replaced by the tone.
    for (i, packet) in key_press(101, 5, 800, 7, 5, 160).iter().enumerate() {
        got.extend(send(&mut b, now, Leg::A, packet));
        if i < 4 {
            assert!(
                send(
                    &mut b,
                    now,
                    Leg::A,
                    &rtp(0, 100 + i as u16, 960 + 160 * i as u32, 5, false, &quiet)
                )
                .is_empty()
            );
        }
        now += Duration::from_millis(20);
    }
    for i in 0..10u16 {
        got.extend(send(
            &mut b,
            now,
            Leg::A,
            &rtp(0, 200 + i, 1760 + 160 * u32::from(i), 5, false, &quiet),
        ));
    }
    assert!(got.iter().all(|p| p.pt == 0 && p.payload.len() == 160));
    // 5 quiet, 6 tone (960 samples), 10 quiet.
    assert_eq!(got.len(), 21);
    let ts: Vec<u32> = got.iter().map(|p| p.ts).collect();
    let expected: Vec<u32> = (0..21).map(|i| 16000 + 160 * i).collect();
    assert_eq!(ts, expected, "tones fill the event's time on the same timeline");
    assert!(got[5].marker, "the tone starts a talk-spurt");
    let mut detector = InbandDetector::new();
    let mut digits = Vec::new();
    detector.process(&decode_ulaw(&got), &mut digits);
    let digits: Vec<char> = digits.iter().map(|d| d.digit).collect();
    assert_eq!(digits, vec!['7']);
    assert_eq!(b.stats().a_to_b.dropped_packets, 4, "only the replaced audio");
}

#[test]
fn telephone_events_are_dropped_on_an_opus_leg_without_them() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Opus, 111, None, B_REMOTE),
    );
    for packet in key_press(101, 1, 0, 3, 3, 160) {
        assert!(send(&mut b, now, Leg::A, &packet).is_empty());
    }
    assert_eq!(b.stats().a_to_b.dropped_packets, 6);
}

#[test]
fn a_lost_end_packet_does_not_mute_the_audio_for_long() {
    let mut now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let quiet = [0xFFu8; 160];
    assert_eq!(send(&mut b, now, Leg::A, &event_packet(101, 1, 0, 5, 1, false, 160)).len(), 1);
    assert!(send(&mut b, now, Leg::A, &rtp(0, 2, 160, 5, false, &quiet)).is_empty());
    now += Duration::from_millis(400);
    assert_eq!(send(&mut b, now, Leg::A, &rtp(0, 3, 3360, 5, false, &quiet)).len(), 1);
}

#[test]
fn inband_tones_cover_an_event_updated_every_50_ms() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, Some(101), A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let mut counts = Vec::new();
    let mut got = Vec::new();
    for (duration, end) in [(400, false), (800, false), (1200, false), (1300, true), (1300, true)] {
        let out = send(&mut b, now, Leg::A, &event_packet(101, 1, 0, 5, 0, end, duration));
        counts.push(out.len());
        got.extend(out);
    }
    // Whole packets while the key is down, the padded rest at the end, nothing for the
    // repeated end packet.
    assert_eq!(counts, vec![2, 3, 2, 2, 0]);
    let ts: Vec<u32> = got.iter().map(|p| p.ts).collect();
    assert_eq!(ts, (0..9).map(|i| 16000 + 160 * i).collect::<Vec<u32>>());
    assert_eq!(b.stream_state(Leg::B).next_ts, 16000 + 9 * 160);
    let pcm = decode_ulaw(&got);
    let tail = &pcm[1300..];
    assert!(tail.iter().all(|s| s.abs() <= 8), "padded with silence after the press");
}

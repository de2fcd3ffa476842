use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::*;
use crate::media::codec::{CodecInfo, Decoder, Encoder, correlation, linear_to_ulaw};
use crate::media::dtmf::InbandDetector;
use crate::media::dtmf::rfc4733::TelephoneEvent;
use crate::sdp::{Codec, Direction};

const A_REMOTE: u16 = 40000;
const B_REMOTE: u16 = 42000;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn negotiated(name: CodecName, pt: u8, te: Option<u8>, remote: u16) -> Negotiated {
    let (clock_rate, channels) = match name {
        CodecName::Opus => (48000, 2),
        _ => (8000, 1),
    };
    Negotiated {
        codec: Codec { name, payload_type: pt, clock_rate, channels },
        telephone_event: te,
        remote_rtp: Some(addr(remote)),
        direction: Direction::SendRecv,
        ptime_ms: 20,
    }
}

fn stream(ssrc: u32, next_seq: u16, next_ts: u32) -> StreamState {
    StreamState { ssrc, next_seq, next_ts }
}

fn bridge(a: Negotiated, b: Negotiated) -> Bridge {
    Bridge::new(
        LegSetup { negotiated: a, outgoing: stream(0xAAAA_0001, 100, 8000) },
        LegSetup { negotiated: b, outgoing: stream(0xBBBB_0002, 500, 16000) },
    )
    .expect("bridge")
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

fn parse(packet: &[u8]) -> Parsed {
    let r = rtp_rs::RtpReader::new(packet).expect("our packets parse");
    Parsed {
        pt: r.payload_type(),
        seq: r.sequence_number().into(),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload().to_vec(),
    }
}

/// Sends `packet` from leg `from` (from its SDP address) and parses what comes out.
fn send(b: &mut Bridge, now: Instant, from: Leg, packet: &[u8]) -> Vec<Parsed> {
    let source = addr(if from == Leg::A { A_REMOTE } else { B_REMOTE });
    b.handle_packet(now, from, source, packet)
        .into_iter()
        .map(|t| {
            assert_eq!(t.leg, from.other());
            parse(&t.packet)
        })
        .collect()
}

fn chirp(rate: u32, seconds: f64, f0: f64, f1: f64, amp: f64) -> Vec<i16> {
    delayed_chirp(rate, seconds, f0, f1, amp, 0.0)
}

/// A linear chirp from `f0` sweeping `f1 - f0` Hz a second, starting `delay_s` late.
fn delayed_chirp(rate: u32, seconds: f64, f0: f64, f1: f64, amp: f64, delay_s: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    let k = (f1 - f0) / seconds;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate) - delay_s;
            if t < 0.0 {
                return 0;
            }
            (amp * (2.0 * std::f64::consts::PI * (f0 * t + k * t * t / 2.0)).sin()) as i16
        })
        .collect()
}

/// Best normalised correlation of `got` against `want` over lags `0..max_lag`.
fn best_correlation(want: &[i16], got: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..max_lag.min(got.len()) {
        let c = correlation(want, &got[lag..]);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

#[test]
fn same_codec_passes_payload_through_with_payload_type_mapping() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Opus, 111, Some(101), A_REMOTE),
        negotiated(CodecName::Opus, 96, Some(100), B_REMOTE),
    );
    assert!(!b.is_transcoding(Leg::A) && !b.is_transcoding(Leg::B));
    let payload = [0x78, 0x01, 0x02, 0x03, 0xFE];
    let out = b.handle_packet(now, Leg::A, addr(A_REMOTE), &rtp(111, 7, 960, 42, false, &payload));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dest, addr(B_REMOTE));
    let p = parse(&out[0].packet);
    assert_eq!((p.pt, p.payload.as_slice()), (96, &payload[..]));
    // And back: B's 96 becomes A's 111.
    let back = send(&mut b, now, Leg::B, &rtp(96, 1, 0, 77, false, &payload));
    assert_eq!(back[0].pt, 111);
    assert_eq!(back[0].ssrc, 0xAAAA_0001);
    // Another payload type than the negotiated ones is dropped.
    assert!(send(&mut b, now, Leg::A, &rtp(0, 8, 1920, 42, false, &payload)).is_empty());
    assert_eq!(b.stats().a_to_b.dropped_packets, 1);
    assert_eq!(b.stats().a_to_b.sent_packets, 1);
}

#[test]
fn outgoing_stream_continues_from_the_given_state() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, None, A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let audio = [0xFFu8; 160];
    let mut got = Vec::new();
    for i in 0..3u16 {
        got.extend(send(
            &mut b,
            now,
            Leg::A,
            &rtp(0, 9000 + i, 123_456 + 160 * u32::from(i), 42, false, &audio),
        ));
    }
    let firsts: Vec<_> = got.iter().map(|p| (p.ssrc, p.seq, p.ts, p.marker)).collect();
    assert_eq!(
        firsts,
        vec![
            (0xBBBB_0002, 500, 16000, true),
            (0xBBBB_0002, 501, 16160, false),
            (0xBBBB_0002, 502, 16320, false),
        ]
    );
    assert_eq!(b.stream_state(Leg::B), stream(0xBBBB_0002, 503, 16480));
    // A lost packet keeps its gap on our timeline.
    let p = send(&mut b, now, Leg::A, &rtp(0, 9004, 123_456 + 160 * 4, 42, false, &audio));
    assert_eq!((p[0].seq, p[0].ts, p[0].marker), (503, 16640, false));
    // A new source SSRC continues right after our last packet, with a marker.
    let p = send(&mut b, now, Leg::A, &rtp(0, 1, 999, 4343, false, &audio));
    assert_eq!((p[0].ssrc, p[0].seq, p[0].ts, p[0].marker), (0xBBBB_0002, 504, 16800, true));
    let p = send(&mut b, now, Leg::A, &rtp(0, 2, 1159, 4343, false, &audio));
    assert_eq!((p[0].seq, p[0].ts, p[0].marker), (505, 16960, false));
    // A huge timestamp jump is treated like a new source.
    let p = send(&mut b, now, Leg::A, &rtp(0, 3, 1159 + 8000 * 3600, 4343, false, &audio));
    assert_eq!((p[0].seq, p[0].ts, p[0].marker), (506, 17120, true));
    // The other leg's stream has not moved.
    assert_eq!(b.stream_state(Leg::A), stream(0xAAAA_0001, 100, 8000));
}

#[test]
fn source_marker_is_kept() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcma, 8, None, A_REMOTE),
        negotiated(CodecName::Pcma, 8, None, B_REMOTE),
    );
    let audio = [0xD5u8; 160];
    send(&mut b, now, Leg::A, &rtp(8, 1, 0, 1, false, &audio));
    let p = send(&mut b, now, Leg::A, &rtp(8, 2, 4000, 1, true, &audio));
    assert!(p[0].marker);
    assert_eq!(p[0].ts, 16000 + 4000);
}

fn transcode_g711(from: CodecName, to: CodecName) {
    let now = Instant::now();
    let (from_pt, to_pt) =
        (from.static_payload_type().unwrap_or(0), to.static_payload_type().unwrap_or(0));
    let mut b =
        bridge(negotiated(from, from_pt, None, A_REMOTE), negotiated(to, to_pt, None, B_REMOTE));
    assert!(b.is_transcoding(Leg::A));
    let pcm = chirp(8000, 1.0, 200.0, 3000.0, 8000.0);
    let mut enc = Encoder::new(from).expect("encoder");
    let mut dec = Decoder::new(to).expect("decoder");
    let mut got = Vec::new();
    let mut packets = Vec::new();
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let frame = enc.encode(chunk).expect("encode");
        let out = send(
            &mut b,
            now,
            Leg::A,
            &rtp(from_pt, i as u16, 160 * i as u32, 9, false, &frame.payload),
        );
        for p in out {
            assert_eq!(p.pt, to_pt);
            dec.decode_into(&p.payload, &mut got).expect("decode");
            packets.push(p);
        }
    }
    assert_eq!(packets.len(), 50);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.seq, 500 + i as u16);
        assert_eq!(p.ts, 16000 + 160 * i as u32);
        assert_eq!(p.marker, i == 0);
    }
    let (c, lag) = best_correlation(&pcm, &got, 1);
    assert!(c > 0.99, "{from:?} -> {to:?}: correlation {c} at lag {lag}");
}

#[test]
fn transcodes_pcmu_to_pcma_and_back() {
    transcode_g711(CodecName::Pcmu, CodecName::Pcma);
    transcode_g711(CodecName::Pcma, CodecName::Pcmu);
}

#[test]
fn transcodes_pcmu_to_opus() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, None, A_REMOTE),
        negotiated(CodecName::Opus, 111, None, B_REMOTE),
    );
    let pcm8 = chirp(8000, 1.0, 200.0, 3000.0, 8000.0);
    let mut dec = Decoder::new(CodecName::Opus).expect("decoder");
    let mut got = Vec::new();
    let mut packets = Vec::new();
    for (i, chunk) in pcm8.chunks(160).enumerate() {
        let payload: Vec<u8> = chunk.iter().map(|&s| linear_to_ulaw(s)).collect();
        for p in send(&mut b, now, Leg::A, &rtp(0, i as u16, 160 * i as u32, 9, false, &payload)) {
            assert_eq!(p.pt, 111);
            assert_eq!(dec.decode_into(&p.payload, &mut got).expect("opus decodes"), 960);
            packets.push(p);
        }
    }
    // The resampler holds back at most a couple of packets.
    assert!(packets.len() >= 47, "{} packets", packets.len());
    for (i, p) in packets.iter().enumerate() {
        assert_eq!((p.seq, p.ts), (500 + i as u16, 16000 + 960 * i as u32));
    }
    let want = chirp(48000, 0.9, 200.0, 200.0 + 2800.0 * 0.9, 8000.0);
    let (c, lag) = best_correlation(&want, &got, 4800);
    assert!(c > 0.97, "PCMU -> Opus correlation {c} at lag {lag}");
}

#[test]
fn transcodes_opus_to_pcmu() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Opus, 111, None, A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let pcm48 = chirp(48000, 1.0, 200.0, 3000.0, 8000.0);
    let mut enc = Encoder::new(CodecName::Opus).expect("encoder");
    let mut dec = Decoder::new(CodecName::Pcmu).expect("decoder");
    let mut got = Vec::new();
    let mut packets = Vec::new();
    for (i, chunk) in pcm48.chunks(960).enumerate() {
        let frame = enc.encode(chunk).expect("encode");
        for p in
            send(&mut b, now, Leg::A, &rtp(111, i as u16, 960 * i as u32, 9, false, &frame.payload))
        {
            assert_eq!(p.pt, 0);
            assert_eq!(dec.decode_into(&p.payload, &mut got).expect("decode"), 160);
            packets.push(p);
        }
    }
    assert!(packets.len() >= 47, "{} packets", packets.len());
    for (i, p) in packets.iter().enumerate() {
        assert_eq!((p.seq, p.ts), (500 + i as u16, 16000 + 160 * i as u32));
    }
    // The delay (Opus, resampler) is a fraction of an 8 kHz sample: find the whole
    // samples, then the fraction at 48 kHz steps.
    let want = chirp(8000, 0.9, 200.0, 200.0 + 2800.0 * 0.9, 8000.0);
    let (_, lag) = best_correlation(&want, &got, 800);
    let c = (-6..=6)
        .map(|sixth| {
            let delay = (lag as f64 + f64::from(sixth) / 6.0) / 8000.0;
            let want = delayed_chirp(
                8000,
                0.9 + delay,
                200.0,
                200.0 + 2800.0 * (0.9 + delay),
                8000.0,
                delay,
            );
            correlation(&want, &got)
        })
        .fold(f64::MIN, f64::max);
    assert!(c > 0.97, "Opus -> PCMU correlation {c} near lag {lag}");
}

#[test]
fn transcoding_keeps_silence_gaps_on_the_timeline() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, None, A_REMOTE),
        negotiated(CodecName::Pcma, 8, None, B_REMOTE),
    );
    let audio = [0xFFu8; 160];
    let p = send(&mut b, now, Leg::A, &rtp(0, 1, 0, 9, false, &audio));
    assert_eq!((p[0].ts, p[0].marker), (16000, true));
    // One second of silence suppression, then speech again.
    let p = send(&mut b, now, Leg::A, &rtp(0, 2, 160 + 8000, 9, false, &audio));
    assert_eq!((p[0].seq, p[0].ts, p[0].marker), (501, 16000 + 160 + 8000, true));
}

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
fn symmetric_rtp_latches_to_the_source() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Pcmu, 0, None, A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let audio = [0xFFu8; 160];
    let to_b = b.handle_packet(now, Leg::A, addr(A_REMOTE), &rtp(0, 1, 0, 1, false, &audio));
    assert_eq!(to_b[0].dest, addr(B_REMOTE), "the SDP address before B sent anything");
    // B's phone sits behind NAT: its packets come from elsewhere.
    let natted = addr(55555);
    let to_a = b.handle_packet(now, Leg::B, natted, &rtp(0, 1, 0, 2, false, &audio));
    assert_eq!(to_a[0].dest, addr(A_REMOTE));
    assert_eq!(b.remote(Leg::B), Some(natted));
    let to_b = b.handle_packet(now, Leg::A, addr(A_REMOTE), &rtp(0, 2, 160, 1, false, &audio));
    assert_eq!(to_b[0].dest, natted);
    // Junk from a third address does not move the latch.
    b.handle_packet(now, Leg::B, addr(6666), b"not rtp at all");
    b.handle_packet(now, Leg::B, addr(6666), &rtp(34, 1, 0, 2, false, &audio));
    assert_eq!(b.remote(Leg::B), Some(natted));
}

#[test]
fn nothing_is_sent_without_an_address_or_against_the_direction() {
    let now = Instant::now();
    let mut hold = negotiated(CodecName::Pcmu, 0, None, B_REMOTE);
    hold.direction = Direction::RecvOnly;
    let mut b = bridge(negotiated(CodecName::Pcmu, 0, None, A_REMOTE), hold);
    let audio = [0xFFu8; 160];
    assert!(send(&mut b, now, Leg::A, &rtp(0, 1, 0, 1, false, &audio)).is_empty());
    let mut resumed = hold;
    resumed.direction = Direction::SendRecv;
    resumed.remote_rtp = None;
    b.update_leg(Leg::B, resumed);
    assert!(send(&mut b, now, Leg::A, &rtp(0, 2, 160, 1, false, &audio)).is_empty());
    resumed.remote_rtp = Some(addr(B_REMOTE));
    b.update_leg(Leg::B, resumed);
    assert_eq!(send(&mut b, now, Leg::A, &rtp(0, 3, 320, 1, false, &audio)).len(), 1);
}

#[test]
fn junk_packets_are_dropped_and_counted() {
    let now = Instant::now();
    let mut b = bridge(
        negotiated(CodecName::Opus, 111, Some(101), A_REMOTE),
        negotiated(CodecName::Pcmu, 0, None, B_REMOTE),
    );
    let mut truncated_extension = rtp(111, 1, 0, 1, false, &[]);
    truncated_extension[0] |= 0x10;
    let mut csrcs_missing = rtp(111, 1, 0, 1, false, &[1, 2]);
    csrcs_missing[0] |= 0x0F;
    let mut bad_padding = rtp(111, 1, 0, 1, false, &[1, 2, 200]);
    bad_padding[0] |= 0x20;
    let mut version_one = rtp(111, 1, 0, 1, false, &[1]);
    version_one[0] = 0x40;
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80; 11],
        version_one,
        truncated_extension,
        csrcs_missing,
        bad_padding,
        rtp(111, 1, 0, 1, false, &vec![0xFC; MAX_RTP_PACKET]),
        // Undecodable Opus and a short telephone-event.
        rtp(111, 1, 0, 1, false, &[]),
        rtp(101, 2, 0, 1, false, &[1, 2]),
    ];
    for packet in &junk {
        assert!(send(&mut b, now, Leg::A, packet).is_empty(), "{packet:02x?}");
    }
    assert_eq!(b.stats().a_to_b.dropped_packets, junk.len() as u64);
    assert_eq!(b.stats().a_to_b.received_packets, junk.len() as u64);

    // Random bytes with a valid-looking header never panic, and every output parses.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..20_000u32 {
        let len = rng.random_range(0..300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if let Some(first) = bytes.first_mut() {
            *first = (*first & 0x3F) | 0x80;
        }
        if i % 2 == 0 && bytes.len() > 1 {
            bytes[1] = if i % 4 == 0 { 111 } else { 101 } | (bytes[1] & 0x80);
        }
        let from = if i % 3 == 0 { Leg::B } else { Leg::A };
        for t in b.handle_packet(now, from, addr(A_REMOTE), &bytes) {
            assert!(t.packet.len() <= MAX_RTP_PACKET);
            rtp_rs::RtpReader::new(&t.packet).expect("output parses");
        }
    }
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

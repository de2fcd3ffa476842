//! Unit tests for the relay: shared helpers, payload-type mapping and latching here;
//! transcoding and telephone events in their own files.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::*;
use crate::media::codec::{CodecInfo, Decoder, Encoder, correlation, linear_to_ulaw};
use crate::media::dtmf::InbandDetector;
use crate::media::dtmf::rfc4733::TelephoneEvent;
use crate::sdp::{Codec, Direction};

mod events;
mod transcode;

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
        srtp: None,
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
    let mut b = bridge(negotiated(CodecName::Pcmu, 0, None, A_REMOTE), hold.clone());
    let audio = [0xFFu8; 160];
    assert!(send(&mut b, now, Leg::A, &rtp(0, 1, 0, 1, false, &audio)).is_empty());
    let mut resumed = hold;
    resumed.direction = Direction::SendRecv;
    resumed.remote_rtp = None;
    b.update_leg(Leg::B, resumed.clone());
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

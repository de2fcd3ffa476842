//! Media parsers fed arbitrary bytes: they answer with errors or nothing, never a panic.

use std::time::{Duration, Instant};

use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::codec::Decoder;
use zendesk_ivr::media::dtmf::{InbandDetector, Rfc4733Receiver, parse_info};
use zendesk_ivr::media::prompt::{Limits, decode_wav};

/// A small deterministic generator (no dependency needed for noise).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn valid_wav() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..3200i32 {
            w.write_sample((i * 7 % 2000) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    cursor.into_inner()
}

#[test]
fn wav_decoder_survives_mutations() {
    let wav = valid_wav();
    let mut rng = Lcg(1);
    let limits = Limits { max_bytes: 1 << 20, max_duration: Duration::from_secs(5) };
    for _ in 0..3000 {
        let mut bytes = wav.clone();
        for _ in 0..(rng.next() % 6 + 1) {
            let at = (rng.next() as usize) % 64; // the header is where the danger is
            bytes[at] = rng.next() as u8;
        }
        let cut = (rng.next() as usize) % (bytes.len() + 1);
        bytes.truncate(cut.max(rng.next() as usize % bytes.len()));
        if let Ok(pcm) = decode_wav(&bytes, limits) {
            assert!(pcm.duration() <= limits.max_duration);
        }
    }
    for _ in 0..2000 {
        let _ = decode_wav(&rng.bytes(200), limits);
    }
}

#[test]
fn rtp_event_receiver_survives_noise() {
    let mut rng = Lcg(2);
    let t0 = Instant::now();
    let mut rx = Rfc4733Receiver::new(101, 8000);
    for i in 0..20_000u64 {
        let mut pkt = rng.bytes(40);
        if pkt.len() >= 2 && i % 2 == 0 {
            pkt[0] = 0x80;
            pkt[1] = 101;
        }
        let now = t0 + Duration::from_millis(i);
        let _ = rx.handle_rtp(now, &pkt);
        rx.handle_timeout(now);
    }
}

#[test]
fn info_parser_and_decoders_survive_noise() {
    let mut rng = Lcg(3);
    for _ in 0..5000 {
        let body = rng.bytes(600);
        let _ = parse_info("application/dtmf-relay", &body);
        let _ = parse_info("application/dtmf", &body);
    }
    let mut inband = InbandDetector::new();
    let mut digits = Vec::new();
    for codec in [CodecName::Pcmu, CodecName::Pcma, CodecName::Opus] {
        let mut dec = Decoder::new(codec).unwrap();
        let mut out = Vec::new();
        for _ in 0..2000 {
            out.clear();
            let _ = dec.decode_into(&rng.bytes(300), &mut out);
            if codec != CodecName::Opus {
                inband.process(&out, &mut digits);
            }
        }
    }
}

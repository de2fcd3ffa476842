//! Transcoding between legs that share no codec.

use super::*;

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

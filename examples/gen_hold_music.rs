//! Synthesises the default hold music: a calm 32-second loop of soft additive-synthesis
//! chords with a slow pentatonic bell melody, 16 kHz mono 16-bit.
//!
//! ```text
//! cargo run --example gen_hold_music -- audio/defaultmusic_on_hold.wav
//! ```
//!
//! Design notes:
//! - Eight chords of four seconds each, cross-faded with raised-cosine envelopes. Every
//!   note is rendered on a continuous time axis and added into the buffer modulo its
//!   length, so the tails of the last chord flow into the first: the loop is seamless.
//! - All fundamentals stay below 600 Hz and every note has harmonics, so the music never
//!   holds a pure pair of tones at DTMF frequencies (697–941 Hz with 1209–1633 Hz): the
//!   in-band DTMF detector stays quiet during hold.
//! - The tremolo's rate fits a whole number of cycles into the loop.
//! - No randomness: the same file comes out on every run.

use std::f64::consts::PI;

const RATE: u32 = 16_000;
const CHORD_SECONDS: f64 = 4.0;
/// Cross-fade between chords.
const FADE_SECONDS: f64 = 1.2;
const PEAK: f64 = 0.4;

/// Equal-tempered frequency of a MIDI note.
fn midi(note: i32) -> f64 {
    440.0 * 2f64.powf(f64::from(note - 69) / 12.0)
}

// MIDI numbers: C3 = 48, C4 = 60, C5 = 72.
const CHORDS: [&[i32]; 8] = [
    &[48, 55, 59, 62, 64], // Cmaj9
    &[45, 52, 55, 59, 60], // Am9
    &[53, 57, 60, 64],     // Fmaj7
    &[55, 60, 62, 64],     // G6sus4
    &[52, 55, 59, 62],     // Em7
    &[57, 60, 64, 67],     // Am7
    &[50, 53, 57, 60, 64], // Dm9
    &[55, 60, 62, 67],     // Gsus4
];

/// Bell melody: (start beat in seconds from the loop start, MIDI note). Pentatonic C D E G A,
/// at most D5 (587 Hz).
const MELODY: [(f64, i32); 16] = [
    (0.5, 64),
    (2.0, 67),
    (4.5, 69),
    (6.0, 67),
    (8.5, 72),
    (10.0, 69),
    (12.5, 67),
    (14.0, 62),
    (16.5, 64),
    (18.0, 67),
    (20.5, 69),
    (22.0, 72),
    (24.5, 74),
    (26.0, 72),
    (28.5, 67),
    (30.0, 64),
];

/// A soft pad voice: fundamental plus gently falling harmonics, two slightly detuned
/// copies for warmth.
fn pad_sample(freq: f64, t: f64) -> f64 {
    let mut v = 0.0;
    for (detune, weight) in [(0.998, 0.5), (1.002, 0.5)] {
        let f = freq * detune;
        v += weight
            * ((2.0 * PI * f * t).sin()
                + 0.25 * (2.0 * PI * 2.0 * f * t).sin()
                + 0.08 * (2.0 * PI * 3.0 * f * t).sin());
    }
    v
}

/// A bell voice: quick soft attack, long exponential decay, weak harmonics.
fn bell_sample(freq: f64, t: f64) -> f64 {
    if t < 0.0 {
        return 0.0;
    }
    let attack = (t / 0.03).min(1.0);
    let attack = 0.5 - 0.5 * (PI * attack).cos();
    let decay = (-t / 1.1).exp();
    attack
        * decay
        * ((2.0 * PI * freq * t).sin()
            + 0.2 * (2.0 * PI * 2.0 * freq * t).sin() * (-t / 0.4).exp()
            + 0.05 * (2.0 * PI * 3.0 * freq * t).sin() * (-t / 0.2).exp())
}

/// Raised-cosine envelope: fade in over `fade` from `start`, hold, fade out ending at `end`.
fn envelope(t: f64, start: f64, end: f64, fade: f64) -> f64 {
    if t <= start || t >= end {
        return 0.0;
    }
    let rise = ((t - start) / fade).min(1.0);
    let fall = ((end - t) / fade).min(1.0);
    (0.5 - 0.5 * (PI * rise).cos()) * (0.5 - 0.5 * (PI * fall).cos())
}

fn render() -> Vec<f64> {
    let loop_seconds = CHORD_SECONDS * CHORDS.len() as f64;
    let n = (loop_seconds * f64::from(RATE)) as usize;
    let mut buf = vec![0.0f64; n];
    let dt = 1.0 / f64::from(RATE);

    // Chords: each spans its slot plus half a fade either side.
    for (i, chord) in CHORDS.iter().enumerate() {
        let start = i as f64 * CHORD_SECONDS - FADE_SECONDS / 2.0;
        let end = start + CHORD_SECONDS + FADE_SECONDS;
        let first = (start * f64::from(RATE)).floor() as i64;
        let last = (end * f64::from(RATE)).ceil() as i64;
        let gain = 0.22 / (chord.len() as f64).sqrt();
        for k in first..last {
            let t = k as f64 * dt;
            let env = envelope(t, start, end, FADE_SECONDS);
            if env == 0.0 {
                continue;
            }
            let v: f64 = chord.iter().map(|&note| pad_sample(midi(note), t)).sum();
            buf[k.rem_euclid(n as i64) as usize] += gain * env * v;
        }
    }

    // Melody: each bell rings for up to 5 s, wrapping past the loop end.
    for &(at, note) in &MELODY {
        let first = (at * f64::from(RATE)) as i64;
        let len = (5.0 * f64::from(RATE)) as i64;
        for k in 0..len {
            let t = k as f64 * dt;
            buf[(first + k).rem_euclid(n as i64) as usize] += 0.18 * bell_sample(midi(note), t);
        }
    }

    // Slow tremolo: 8 whole cycles per loop.
    let lfo_hz = 8.0 / loop_seconds;
    for (k, v) in buf.iter_mut().enumerate() {
        let t = k as f64 * dt;
        *v *= 0.9 + 0.1 * (2.0 * PI * lfo_hz * t).sin();
    }

    let peak = buf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if peak > 0.0 { PEAK / peak } else { 1.0 };
    buf.iter_mut().for_each(|v| *v *= scale);
    buf
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path =
        std::env::args().nth(1).unwrap_or_else(|| "audio/defaultmusic_on_hold.wav".to_string());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec)?;
    for v in render() {
        writer.write_sample((v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)?;
    }
    writer.finalize()?;
    println!("wrote {path}");
    Ok(())
}

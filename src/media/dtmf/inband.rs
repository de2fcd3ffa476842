//! In-band DTMF detection on 8 kHz PCM (decoded G.711), for calls without telephone-event.
//!
//! The audio is cut into blocks of [`BLOCK`] samples (12.75 ms). In each block a Goertzel
//! filter measures the eight DTMF frequencies and the second harmonics of the four high
//! ones. A block "hits" a digit when all of these hold:
//! - both tones are above [`MIN_TONE_DBM0`];
//! - the twist (level difference of the two tones) is within ±[`MAX_TWIST_DB`];
//! - each tone stands [`RELATIVE_PEAK_DB`] above the other tones of its group;
//! - the high tone's second harmonic is weak (speech and music are rich in harmonics);
//! - the two tones carry at least [`MIN_TONE_SHARE`] of the block's energy, which rejects
//!   speech and chords whose energy is spread across many frequencies.
//!
//! A digit is reported after [`MIN_HIT_BLOCKS`] hits in a row and ends after
//! [`END_MISS_BLOCKS`] blocks without it, so a short dropout inside one press is not a
//! second digit. A block only hits when the tone fills ≥ 80 % of it (the energy-share
//! test), so two hits need at least 102 + 82 samples (23 ms) of tone: tones of 40 ms or
//! more are always detected, tones of 20 ms never (ITU-T Q.24's accept/reject limits).

use super::{DigitEvent, DigitSource};

/// Input sample rate.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples per analysis block.
pub const BLOCK: usize = 102;
/// Consecutive hit blocks needed to report a digit.
pub const MIN_HIT_BLOCKS: u32 = 2;
/// Consecutive non-hit blocks that end a digit.
pub const END_MISS_BLOCKS: u32 = 2;
/// Weakest tone accepted, per tone.
pub const MIN_TONE_DBM0: f32 = -40.0;
/// Largest level difference between the two tones, either way.
pub const MAX_TWIST_DB: f32 = 8.0;
/// How far each tone must stand above the others of its group.
pub const RELATIVE_PEAK_DB: f32 = 8.0;
/// How far the high tone's second harmonic must stay below the tone.
pub const SECOND_HARMONIC_DB: f32 = 10.0;
/// Share of the block energy the two tones must carry.
pub const MIN_TONE_SHARE: f32 = 0.8;

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711's +3.17 dBm0 is 32124).
const DBM0_AMPLITUDE: f32 = 22_300.0;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

#[derive(Debug, Clone, Copy, Default)]
struct Goertzel {
    coeff: f32,
    s1: f32,
    s2: f32,
}

impl Goertzel {
    fn new(freq: f32) -> Self {
        Goertzel {
            coeff: 2.0 * (2.0 * std::f32::consts::PI * freq / SAMPLE_RATE as f32).cos(),
            s1: 0.0,
            s2: 0.0,
        }
    }

    #[inline]
    fn push(&mut self, x: f32) {
        let s = x + self.coeff * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s;
    }

    /// Squared magnitude; a sine of amplitude A at this frequency gives ≈ (A·N/2)².
    fn power_and_reset(&mut self) -> f32 {
        let p = self.s1 * self.s1 + self.s2 * self.s2 - self.coeff * self.s1 * self.s2;
        self.s1 = 0.0;
        self.s2 = 0.0;
        p.max(0.0)
    }
}

/// Finds DTMF digits in a stream of 8 kHz PCM. Feed it every decoded sample of a call, in
/// order, in chunks of any size.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    rows: [Goertzel; 4],
    cols: [Goertzel; 4],
    harmonics: [Goertzel; 4],
    energy: f32,
    filled: usize,
    candidate: Option<char>,
    run: u32,
    current: Option<char>,
    misses: u32,
    min_tone_power: f32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let amp = DBM0_AMPLITUDE * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        let min_tone_power = (amp * BLOCK as f32 / 2.0).powi(2);
        InbandDetector {
            rows: ROWS.map(Goertzel::new),
            cols: COLS.map(Goertzel::new),
            harmonics: COLS.map(|f| Goertzel::new(2.0 * f)),
            energy: 0.0,
            filled: 0,
            candidate: None,
            run: 0,
            current: None,
            misses: 0,
            min_tone_power,
        }
    }

    /// The digit whose tone is present now, if one was reported and has not ended.
    pub fn active_digit(&self) -> Option<char> {
        self.current
    }

    /// Analyses `pcm` (8 kHz mono), appending a [`DigitEvent`] for each digit that starts.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<DigitEvent>) {
        for &s in pcm {
            let x = f32::from(s);
            for g in
                self.rows.iter_mut().chain(self.cols.iter_mut()).chain(self.harmonics.iter_mut())
            {
                g.push(x);
            }
            self.energy += x * x;
            self.filled += 1;
            if self.filled == BLOCK {
                let hit = self.classify_block();
                self.filled = 0;
                self.energy = 0.0;
                if let Some(ev) = self.debounce(hit) {
                    out.push(ev);
                }
            }
        }
    }

    fn classify_block(&mut self) -> Option<char> {
        let rows = self.rows.each_mut().map(|g| g.power_and_reset());
        let cols = self.cols.each_mut().map(|g| g.power_and_reset());
        let harmonics = self.harmonics.each_mut().map(|g| g.power_and_reset());
        let (r, &row) = argmax(&rows)?;
        let (c, &col) = argmax(&cols)?;
        if row < self.min_tone_power || col < self.min_tone_power {
            return None;
        }
        let twist = db_to_power(MAX_TWIST_DB);
        if row > col * twist || col > row * twist {
            return None;
        }
        let peak = db_to_power(RELATIVE_PEAK_DB);
        let stands_out = |all: &[f32; 4], best: usize, p: f32| {
            all.iter().enumerate().all(|(i, &q)| i == best || q * peak <= p)
        };
        if !stands_out(&rows, r, row) || !stands_out(&cols, c, col) {
            return None;
        }
        if harmonics[c] * db_to_power(SECOND_HARMONIC_DB) > col {
            return None;
        }
        // A tone's Goertzel power times 2/N is its energy in the block.
        let tone_energy = (row + col) * 2.0 / BLOCK as f32;
        if tone_energy < MIN_TONE_SHARE * self.energy {
            return None;
        }
        Some(KEYPAD[r][c])
    }

    fn debounce(&mut self, hit: Option<char>) -> Option<DigitEvent> {
        if hit == self.candidate {
            self.run = self.run.saturating_add(1);
        } else {
            self.candidate = hit;
            self.run = 1;
        }
        if let Some(d) = self.current {
            if hit == Some(d) {
                self.misses = 0;
            } else {
                self.misses += 1;
                if self.misses >= END_MISS_BLOCKS {
                    self.current = None;
                }
            }
        }
        match self.candidate {
            Some(d) if self.current.is_none() && self.run >= MIN_HIT_BLOCKS => {
                self.current = Some(d);
                self.misses = 0;
                Some(DigitEvent {
                    digit: d,
                    duration_ms: self.run * BLOCK as u32 * 1000 / SAMPLE_RATE,
                    source: DigitSource::InBand,
                })
            }
            _ => None,
        }
    }
}

fn argmax(powers: &[f32; 4]) -> Option<(usize, &f32)> {
    powers.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
}

/// Synthesises a DTMF tone pair at 8 kHz: `level_dbm0` for the stronger tone, the other
/// `twist_db` weaker (positive: high tone weaker, negative: low tone weaker). For tests,
/// the test caller and tone prompts.
pub fn synthesize(digit: char, level_dbm0: f32, twist_db: f32, samples: usize) -> Option<Vec<i16>> {
    let (r, c) = KEYPAD.iter().enumerate().find_map(|(r, row)| {
        row.iter().position(|&d| d == digit.to_ascii_uppercase()).map(|c| (r, c))
    })?;
    let strong = DBM0_AMPLITUDE * 10f32.powf(level_dbm0 / 20.0);
    let weak = strong * 10f32.powf(-twist_db.abs() / 20.0);
    let (row_amp, col_amp) = if twist_db >= 0.0 { (strong, weak) } else { (weak, strong) };
    let w =
        |f: f32, i: usize| (2.0 * std::f32::consts::PI * f * i as f32 / SAMPLE_RATE as f32).sin();
    Some(
        (0..samples)
            .map(|i| {
                let v = row_amp * w(ROWS[r], i) + col_amp * w(COLS[c], i);
                v.clamp(-32768.0, 32767.0) as i16
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
    use crate::media::dtmf::DIGITS;

    fn detect(pcm: &[i16]) -> Vec<char> {
        let mut det = InbandDetector::new();
        let mut out = Vec::new();
        // Feed in 20 ms packets, as a call would.
        for chunk in pcm.chunks(160) {
            det.process(chunk, &mut out);
        }
        out.iter().map(|e| e.digit).collect()
    }

    fn silence(n: usize) -> Vec<i16> {
        vec![0; n]
    }

    fn through_ulaw(pcm: &[i16]) -> Vec<i16> {
        pcm.iter().map(|&s| ulaw_to_linear(linear_to_ulaw(s))).collect()
    }

    fn through_alaw(pcm: &[i16]) -> Vec<i16> {
        pcm.iter().map(|&s| alaw_to_linear(linear_to_alaw(s))).collect()
    }

    #[test]
    fn all_digits_at_levels_and_twists() {
        for &digit in &DIGITS {
            for level in [-3.0, -10.0, -20.0, -30.0] {
                for twist in [-6.0, 0.0, 6.0] {
                    let tone = synthesize(digit, level, twist, 640).unwrap(); // 80 ms
                    let mut pcm = silence(400);
                    pcm.extend(&tone);
                    pcm.extend(silence(400));
                    for (name, signal) in
                        [("ulaw", through_ulaw(&pcm)), ("alaw", through_alaw(&pcm))]
                    {
                        assert_eq!(
                            detect(&signal),
                            vec![digit],
                            "{digit} at {level} dBm0, twist {twist} dB, {name}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_sequence_of_digits_in_order() {
        let mut pcm = Vec::new();
        for d in "0123456789*#ABCD11".chars() {
            pcm.extend(synthesize(d, -10.0, 2.0, 560).unwrap()); // 70 ms on
            pcm.extend(silence(480)); // 60 ms off
        }
        let got: String = detect(&through_ulaw(&pcm)).into_iter().collect();
        assert_eq!(got, "0123456789*#ABCD11");
    }

    #[test]
    fn forty_ms_is_enough_and_twenty_is_not() {
        for offset in (0..102).step_by(3) {
            let mut pcm = silence(400 + offset);
            pcm.extend(synthesize('5', -10.0, 0.0, 320).unwrap());
            pcm.extend(silence(400));
            assert_eq!(detect(&pcm), vec!['5'], "40 ms at offset {offset}");
            let mut pcm = silence(400 + offset);
            pcm.extend(synthesize('5', -10.0, 0.0, 160).unwrap());
            pcm.extend(silence(400));
            assert!(detect(&pcm).is_empty(), "20 ms at offset {offset}");
        }
    }

    #[test]
    fn rejects_excess_twist_low_level_and_single_tones() {
        let tone = synthesize('8', -10.0, 12.0, 800).unwrap();
        assert!(detect(&tone).is_empty(), "12 dB twist");
        let tone = synthesize('8', -45.0, 0.0, 800).unwrap();
        assert!(detect(&tone).is_empty(), "-45 dBm0");
        let single: Vec<i16> = (0..800)
            .map(|i| {
                (8000.0 * (2.0 * std::f32::consts::PI * 697.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(detect(&single).is_empty(), "one tone");
    }

    #[test]
    fn short_dropout_is_not_a_second_digit() {
        let mut pcm = synthesize('9', -10.0, 0.0, 800).unwrap();
        pcm.extend(silence(60)); // 7.5 ms gap
        pcm.extend(synthesize('9', -10.0, 0.0, 800).unwrap());
        assert_eq!(detect(&pcm), vec!['9']);
    }

    #[test]
    fn tone_in_noise_is_detected_and_noise_alone_is_not() {
        let mut seed = 12345u32;
        let mut noise = |amp: f32| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0 * amp
        };
        let tone = synthesize('4', -10.0, 0.0, 800).unwrap();
        let noisy: Vec<i16> = tone.iter().map(|&s| (f32::from(s) + noise(700.0)) as i16).collect();
        assert_eq!(detect(&noisy), vec!['4']);
        let only_noise: Vec<i16> = (0..80_000).map(|_| noise(12_000.0) as i16).collect();
        assert!(detect(&only_noise).is_empty());
    }

    #[test]
    fn reports_promptly() {
        let mut det = InbandDetector::new();
        let mut out = Vec::new();
        let tone = synthesize('1', -10.0, 0.0, 1600).unwrap();
        let mut fed = 0;
        for chunk in tone.chunks(80) {
            det.process(chunk, &mut out);
            fed += chunk.len();
            if !out.is_empty() {
                break;
            }
        }
        assert_eq!(out.len(), 1);
        assert!(fed <= 400, "reported after {} ms", fed / 8);
        assert_eq!(det.active_digit(), Some('1'));
        assert!(out[0].duration_ms >= 25);
    }
}

//! A fake engine for tests, here and in other modules: renders a tone (or silence) whose
//! length grows with the text, and can be told to fail, to be slow or to return given
//! bytes. It counts calls and the most renders it saw running at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Synthesizer, TtsError};

/// The fake's output rate.
pub const FAKE_RATE: u32 = 8000;

#[derive(Debug, Default)]
struct Behaviour {
    fail: Option<TtsError>,
    delay: Duration,
    output: Option<Vec<u8>>,
    silent: bool,
}

#[derive(Debug, Default)]
struct State {
    behaviour: Mutex<Behaviour>,
    calls: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// The fake engine. Clones share behaviour and counters.
#[derive(Debug, Clone, Default)]
pub struct FakeSynthesizer {
    state: Arc<State>,
}

/// Decrements the running count when a render ends or is dropped.
struct Running<'a>(&'a State);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeSynthesizer {
    /// A fake that renders a 440 Hz tone at once.
    pub fn new() -> Self {
        Self::default()
    }

    fn behaviour(&self) -> std::sync::MutexGuard<'_, Behaviour> {
        self.state.behaviour.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every render fails with `error` (`None`: renders succeed again).
    pub fn fail_with(&self, error: Option<TtsError>) {
        self.behaviour().fail = error;
    }

    /// Every render takes `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour().delay = delay;
    }

    /// Every render returns exactly `bytes` (e.g. an invalid WAV); `None`: a tone again.
    pub fn set_output(&self, bytes: Option<Vec<u8>>) {
        self.behaviour().output = bytes;
    }

    /// Silence instead of a tone.
    pub fn set_silent(&self, silent: bool) {
        self.behaviour().silent = silent;
    }

    /// Renders started so far.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The most renders that ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// How long the fake's audio for `text` lasts: 100 ms plus 10 ms per character.
    pub fn duration_of(text: &str) -> Duration {
        Duration::from_millis(100 + 10 * text.chars().count() as u64)
    }
}

/// A mono 16-bit WAV at [`FAKE_RATE`]: a 440 Hz tone at half scale, or silence.
pub fn tone_wav(duration: Duration, silent: bool) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: FAKE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    let samples = (duration.as_secs_f64() * f64::from(FAKE_RATE)) as usize;
    {
        let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("a WAV header");
        for n in 0..samples {
            let phase = 2.0 * std::f64::consts::PI * 440.0 * n as f64 / f64::from(FAKE_RATE);
            let value = if silent { 0 } else { (phase.sin() * 16_000.0) as i16 };
            writer.write_sample(value).expect("writing to memory");
        }
        writer.finalize().expect("writing to memory");
    }
    bytes.into_inner()
}

impl Synthesizer for FakeSynthesizer {
    async fn synthesize(&self, text: &str, _voice: &str) -> Result<Vec<u8>, TtsError> {
        let state = &*self.state;
        state.calls.fetch_add(1, Ordering::SeqCst);
        let now = state.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(state);
        state.peak.fetch_max(now, Ordering::SeqCst);
        let (delay, fail, output, silent) = {
            let b = self.behaviour();
            (b.delay, b.fail.clone(), b.output.clone(), b.silent)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(error) = fail {
            return Err(error);
        }
        Ok(output.unwrap_or_else(|| tone_wav(Self::duration_of(text), silent)))
    }

    fn backend(&self) -> &str {
        "fake"
    }
}

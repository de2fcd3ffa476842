//! Render time of the per-call status sentence with the configured TTS engine (espeak-ng
//! by default): cold (a sentence not rendered before, no disk cache) and cached (the
//! same sentence again, from memory). Prints p50 and p99 of each.
//!
//! ```text
//! cargo run --release --example tts_render_bench -- [SENTENCES]   (default 50)
//! ```
//!
//! The sentences are the English status sentence for tickets 1000, 1001, ...: distinct
//! texts of the length a caller hears, so every cold render runs the engine.

use std::time::{Duration, Instant};

use zendesk_ivr::ivr::prompts::digit_by_digit;
use zendesk_ivr::tts::{Tts, TtsConfig};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name}: n={} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        times.len(),
        percentile(&times, 50.0).as_secs_f64() * 1000.0,
        percentile(&times, 99.0).as_secs_f64() * 1000.0,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(50);
    let config = TtsConfig { cache_dir: None, timeout_ms: 10_000, ..TtsConfig::default() };
    let tts = Tts::from_config(&config)?;
    let sentences: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "Hello Kari. Your ticket {}, about Internet connection down since this morning, \
                 is being worked on.",
                digit_by_digit(1000 + i)
            )
        })
        .collect();
    let mut cold = Vec::new();
    for text in &sentences {
        let started = Instant::now();
        tts.render(text, "en").await?;
        cold.push(started.elapsed());
    }
    let mut cached = Vec::new();
    for text in &sentences {
        let started = Instant::now();
        tts.render(text, "en").await?;
        cached.push(started.elapsed());
    }
    println!("engine={} sentence chars={}", tts.backend(), sentences[0].len());
    report("cold", cold);
    report("cached", cached);
    Ok(())
}

//! The service with the fake engine: keys, voices, caches, bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checks::{clean_text, select_voice};
use super::*;

fn config() -> TtsConfig {
    TtsConfig { cache_dir: None, ..TtsConfig::default() }
}

fn engine_error() -> TtsError {
    TtsError::Engine("down".into())
}

#[test]
fn keys_depend_on_every_part_and_cannot_be_confused() {
    let key = cache_key("espeak-ng", "en-us", "hello");
    assert_eq!(key, cache_key("espeak-ng", "en-us", "hello"));
    assert_ne!(key, cache_key("fake", "en-us", "hello"));
    assert_ne!(key, cache_key("espeak-ng", "nb", "hello"));
    assert_ne!(key, cache_key("espeak-ng", "en-us", "hello!"));
    assert_ne!(cache_key("ab", "c", "d"), cache_key("a", "bc", "d"), "parts are delimited");
    let hex = key.hex();
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
}

#[test]
fn voices_fall_back_to_the_primary_language() {
    let voices = TtsConfig::default().voices;
    assert_eq!(select_voice(&voices, "en").unwrap(), "en-us");
    assert_eq!(select_voice(&voices, "nb-NO").unwrap(), "nb");
    assert_eq!(select_voice(&voices, "NB_no").unwrap(), "nb");
    assert_eq!(select_voice(&voices, "de"), Err(TtsError::NoVoice("de".into())));
    assert_eq!(select_voice(&voices, ""), Err(TtsError::NoVoice(String::new())));
}

#[test]
fn text_is_cleaned_and_bounded() {
    assert_eq!(clean_text(" a\r\nb\tc\0 ").unwrap(), "a  b c");
    assert_eq!(clean_text(" \n "), Err(TtsError::EmptyText));
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    assert!(matches!(clean_text(&long), Err(TtsError::TextTooLong { .. })));
}

#[test]
fn renders_can_be_spawned() {
    fn spawnable<T: Send + 'static>(_: T) {}
    let tts = Tts::with_fake(FakeSynthesizer::new(), &config());
    spawnable(async move { tts.render("hi", "en").await });
}

#[tokio::test]
async fn a_sentence_is_rendered_once_then_comes_from_memory() {
    let fake = FakeSynthesizer::new();
    let tts = Tts::with_fake(fake.clone(), &config());
    assert_eq!(tts.cached("Hello", "en"), None);
    let first = tts.render_detailed("Hello", "en").await.unwrap();
    assert_eq!((first.source, first.voice.as_str()), (RenderSource::Engine, "en-us"));
    let again = tts.render_detailed("Hello", "en-US").await.unwrap();
    assert_eq!(again.source, RenderSource::Memory);
    assert!(Arc::ptr_eq(&first.wav, &again.wav));
    assert_eq!(tts.cached("Hello", "en").as_deref(), Some(&first.wav[..]));
    assert_eq!(fake.calls(), 1);
    let pcm = crate::media::prompt::decode_wav(&first.wav, Default::default()).unwrap();
    assert_eq!(pcm.duration(), FakeSynthesizer::duration_of("Hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_never_runs_more_renders_than_allowed() {
    let fake = FakeSynthesizer::new();
    fake.set_delay(Duration::from_millis(40));
    let tts = Tts::with_fake(fake.clone(), &TtsConfig { max_concurrent: 3, ..config() });
    let renders: Vec<_> = (0..12)
        .map(|n| {
            let tts = tts.clone();
            tokio::spawn(async move { tts.render(&format!("sentence {n}"), "en").await })
        })
        .collect();
    for render in renders {
        render.await.unwrap().unwrap();
    }
    assert_eq!(fake.calls(), 12);
    assert!(fake.peak_concurrency() <= 3, "peak {}", fake.peak_concurrency());
    assert!(fake.peak_concurrency() >= 2, "renders did overlap: {}", fake.peak_concurrency());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_asking_for_one_sentence_share_its_render() {
    let fake = FakeSynthesizer::new();
    fake.set_delay(Duration::from_millis(50));
    let tts = Tts::with_fake(fake.clone(), &config());
    let renders: Vec<_> = (0..10)
        .map(|_| {
            let tts = tts.clone();
            tokio::spawn(async move { tts.render("Your ticket is open", "nb").await })
        })
        .collect();
    for render in renders {
        render.await.unwrap().unwrap();
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_slow_engine_times_out_within_the_bound_and_fills_the_cache_later() {
    let fake = FakeSynthesizer::new();
    // The call waits 100 ms; the render takes 250 ms, within its own 400 ms limit.
    fake.set_delay(Duration::from_millis(250));
    let tts = Tts::with_fake(fake.clone(), &TtsConfig { timeout_ms: 100, ..config() });
    let started = Instant::now();
    let late = tts.render("Slow sentence", "en").await;
    assert_eq!(late, Err(TtsError::Timeout(Duration::from_millis(100))));
    assert!(started.elapsed() < Duration::from_millis(240), "{:?}", started.elapsed());
    // The render goes on; an unhurried caller joins it rather than starting another.
    let joined = tts.render_unhurried("Slow sentence", "en").await.unwrap();
    assert_eq!(joined.source, RenderSource::Engine);
    assert_eq!(fake.calls(), 1);
    assert!(tts.cached("Slow sentence", "en").is_some());
}

#[tokio::test]
async fn a_render_past_its_own_limit_is_abandoned() {
    let fake = FakeSynthesizer::new();
    fake.set_delay(Duration::from_secs(30));
    let tts = Tts::with_fake(fake.clone(), &TtsConfig { timeout_ms: 20, ..config() });
    let started = Instant::now();
    let limit = Duration::from_millis(20) * service::BACKGROUND_FACTOR;
    assert_eq!(tts.render_unhurried("Never", "en").await.unwrap_err(), TtsError::Timeout(limit));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(tts.cached("Never", "en").is_none());
}

#[tokio::test]
async fn invalid_wavs_and_failures_are_errors_and_never_cached() {
    let fake = FakeSynthesizer::new();
    let tts = Tts::with_fake(fake.clone(), &config());
    fake.set_output(Some(b"RIFF but not really a wave file".to_vec()));
    assert!(matches!(tts.render("Hi", "en").await, Err(TtsError::InvalidWav(_))));
    fake.set_output(Some(fake::tone_wav(Duration::ZERO, false)));
    assert!(matches!(tts.render("Hi", "en").await, Err(TtsError::InvalidWav(_))), "no audio");
    fake.set_output(None);
    fake.fail_with(Some(engine_error()));
    assert_eq!(tts.render("Hi", "en").await, Err(engine_error()));
    assert!(tts.cached("Hi", "en").is_none());
    fake.fail_with(None);
    tts.render("Hi", "en").await.unwrap();
    assert_eq!(fake.calls(), 4);
}

#[tokio::test]
async fn unknown_languages_and_empty_text_fail_before_the_engine() {
    let fake = FakeSynthesizer::new();
    let tts = Tts::with_fake(fake.clone(), &config());
    assert_eq!(tts.render("Hallo", "de").await, Err(TtsError::NoVoice("de".into())));
    assert_eq!(tts.render(" \r\n", "en").await, Err(TtsError::EmptyText));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn the_disk_cache_survives_a_restart_and_replaces_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = TtsConfig { cache_dir: Some(dir.path().join("cache")), ..TtsConfig::default() };
    let first = Tts::with_fake(FakeSynthesizer::new(), &config);
    let rendered = first.render_detailed("Welcome back", "nb").await.unwrap();
    let file = dir.path().join("cache").join(format!("{}.wav", rendered.key.hex()));
    assert_eq!(std::fs::read(&file).unwrap(), &rendered.wav[..]);

    let fake = FakeSynthesizer::new();
    let restarted = Tts::with_fake(fake.clone(), &config);
    let loaded = restarted.render_detailed("Welcome back", "nb").await.unwrap();
    assert_eq!((loaded.source, fake.calls()), (RenderSource::Disk, 0));
    assert_eq!(loaded.wav, rendered.wav);

    std::fs::write(&file, b"garbage").unwrap();
    let again = Tts::with_fake(fake.clone(), &config);
    let fresh = again.render_detailed("Welcome back", "nb").await.unwrap();
    assert_eq!((fresh.source, fake.calls()), (RenderSource::Engine, 1));
    assert_eq!(std::fs::read(&file).unwrap(), &fresh.wav[..]);
    let leftovers = std::fs::read_dir(dir.path().join("cache")).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary files are left");
}

#[tokio::test]
async fn the_memory_cache_is_bounded() {
    let tts = Tts::with_fake(FakeSynthesizer::new(), &TtsConfig { cache_entries: 2, ..config() });
    for text in ["one", "two", "three"] {
        tts.render(text, "en").await.unwrap();
    }
    assert_eq!(tts.memory_entries(), 2);
    assert!(tts.cached("one", "en").is_none(), "the oldest went first");
    assert!(tts.cached("three", "en").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prerender_counts_and_keeps_the_first_error() {
    let fake = FakeSynthesizer::new();
    fake.set_delay(Duration::from_millis(10));
    let tts = Tts::with_fake(fake.clone(), &TtsConfig { max_concurrent: 2, ..config() });
    let mut items: Vec<(String, String)> =
        (0..6).map(|n| (format!("prompt {n}"), "en".to_string())).collect();
    items.insert(3, ("Hallo".into(), "de".into()));
    let report = tts.prerender(items).await;
    assert_eq!((report.ok, report.failed), (6, 1));
    assert_eq!(report.first_error, Some(TtsError::NoVoice("de".into())));
    assert!(fake.peak_concurrency() <= 2);
    assert!(tts.cached("prompt 5", "en").is_some());
}

//! [`Tts`]: the service calls use. It picks the voice, finds the sentence in a cache or
//! renders it once, however many calls ask at the same moment, and bounds the work.
//!
//! Bounds. A caller waits at most its bound (`tts.timeout_ms` for [`Tts::render`]), then
//! gets [`TtsError::Timeout`]. The render itself runs in its own task, bounded by
//! [`BACKGROUND_FACTOR`] × `timeout_ms` (permit wait included); one that finishes after its
//! caller gave up still fills both caches, so the next call asking gets it at once. At most
//! `tts.max_concurrent` engine renders run at a time, whatever the number of calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::cache::{DiskCache, MemoryCache};
use super::checks::{checked_wav, clean_text, select_voice};
use super::{
    Backend, CacheKey, Engine, EspeakSynthesizer, FakeSynthesizer, HttpSynthesizer, Synthesizer,
    TtsConfig, TtsError, cache_key,
};

/// A render may go on this many times `tts.timeout_ms` after its caller stopped waiting.
pub const BACKGROUND_FACTOR: u32 = 4;

/// Where a rendered sentence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderSource {
    Memory,
    Disk,
    Engine,
}

/// A rendered sentence.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// A WAV file's bytes, checked to decode.
    pub wav: Arc<[u8]>,
    pub voice: String,
    pub source: RenderSource,
    pub key: CacheKey,
}

/// What [`Tts::prerender`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrerenderReport {
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<TtsError>,
}

type Outcome = Result<(Arc<[u8]>, RenderSource), TtsError>;

struct Inner {
    backend: Backend,
    voices: BTreeMap<String, String>,
    timeout: Duration,
    limit: Duration,
    max_concurrent: usize,
    permits: Semaphore,
    memory: Mutex<MemoryCache>,
    disk: Option<DiskCache>,
    /// Renders under way, so that callers asking for the same sentence share one.
    in_flight: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
}

/// The TTS service. Cheap to clone; clones share the engine, the caches and the bound.
#[derive(Clone)]
pub struct Tts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("backend", &self.inner.backend)
            .field("voices", &self.inner.voices)
            .field("timeout", &self.inner.timeout)
            .field("max_concurrent", &self.inner.max_concurrent)
            .finish()
    }
}

/// A render's place in `in_flight`, given up when the render's task ends.
struct InFlight {
    tts: Tts,
    key: CacheKey,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.tts.inner.in_flight).remove(&self.key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tts {
    /// The engine `tts.engine` names, with its bounds and caches. The HTTP engine may read
    /// `tts.http.api_key_file`: call at start-up.
    pub fn from_config(config: &TtsConfig) -> Result<Tts, TtsError> {
        let limit = config.timeout() * BACKGROUND_FACTOR;
        let backend = match config.engine {
            Engine::Espeak => Backend::Espeak(EspeakSynthesizer::new(&config.espeak_path, limit)),
            Engine::Http => Backend::Http(HttpSynthesizer::from_config(&config.http, limit)?),
        };
        Ok(Self::with_backend(backend, config))
    }

    /// The service around a fake engine (tests).
    pub fn with_fake(fake: FakeSynthesizer, config: &TtsConfig) -> Tts {
        Self::with_backend(Backend::Fake(fake), config)
    }

    /// The service around any engine; `config` gives voices, bounds and caches.
    pub fn with_backend(backend: Backend, config: &TtsConfig) -> Tts {
        let max_concurrent = config.max_concurrent.max(1);
        Tts {
            inner: Arc::new(Inner {
                backend,
                voices: config.voices.clone(),
                timeout: config.timeout(),
                limit: config.timeout() * BACKGROUND_FACTOR,
                max_concurrent,
                permits: Semaphore::new(max_concurrent),
                memory: Mutex::new(MemoryCache::new(config.cache_entries)),
                disk: config.cache_dir().map(DiskCache::new),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The engine's name, as used in cache keys.
    pub fn backend(&self) -> &str {
        self.inner.backend.backend()
    }

    /// How long [`Tts::render`] waits.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The languages with a voice, in order.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.inner.voices.keys().map(String::as_str)
    }

    /// The voice that speaks `lang`.
    pub fn voice_for(&self, lang: &str) -> Result<&str, TtsError> {
        select_voice(&self.inner.voices, lang)
    }

    /// The WAV of `text` spoken in `lang`, within `tts.timeout_ms`.
    pub async fn render(&self, text: &str, lang: &str) -> Result<Arc<[u8]>, TtsError> {
        self.render_within(text, lang, self.inner.timeout).await.map(|rendered| rendered.wav)
    }

    /// Like [`Tts::render`], and tells where the audio came from.
    pub async fn render_detailed(&self, text: &str, lang: &str) -> Result<Rendered, TtsError> {
        self.render_within(text, lang, self.inner.timeout).await
    }

    /// For tools and start-up, where no caller is waiting: bounded by the render's own
    /// limit ([`BACKGROUND_FACTOR`] × `tts.timeout_ms`), not the call path's.
    pub async fn render_unhurried(&self, text: &str, lang: &str) -> Result<Rendered, TtsError> {
        self.render_within(text, lang, self.inner.limit).await
    }

    /// The WAV of `text` in `lang` if the memory cache has it. Never waits.
    pub fn cached(&self, text: &str, lang: &str) -> Option<Arc<[u8]>> {
        let voice = self.voice_for(lang).ok()?;
        let key = cache_key(self.backend(), voice, &clean_text(text).ok()?);
        lock(&self.inner.memory).get(&key)
    }

    /// Entries in the memory cache.
    pub fn memory_entries(&self) -> usize {
        lock(&self.inner.memory).len()
    }

    /// Renders every (text, language) pair, `tts.max_concurrent` at a time (start-up).
    pub async fn prerender(&self, items: Vec<(String, String)>) -> PrerenderReport {
        let mut report = PrerenderReport::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut record =
            |done: Result<Result<Rendered, TtsError>, tokio::task::JoinError>| match done
                .unwrap_or_else(|err| Err(TtsError::Engine(err.to_string())))
            {
                Ok(_) => report.ok += 1,
                Err(err) => {
                    report.failed += 1;
                    report.first_error.get_or_insert(err);
                }
            };
        for (text, lang) in items {
            while tasks.len() >= self.inner.max_concurrent {
                if let Some(done) = tasks.join_next().await {
                    record(done);
                }
            }
            let tts = self.clone();
            tasks.spawn(async move { tts.render_unhurried(&text, &lang).await });
        }
        while let Some(done) = tasks.join_next().await {
            record(done);
        }
        report
    }

    async fn render_within(
        &self,
        text: &str,
        lang: &str,
        bound: Duration,
    ) -> Result<Rendered, TtsError> {
        let result = self.render_inner(text, lang, bound).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(TtsError::Timeout(_)) => "timeout",
            Err(_) => "error",
        };
        metrics::counter!("tts_renders_total", "result" => label).increment(1);
        if let Err(err) = &result {
            tracing::warn!(lang, chars = text.chars().count(), %err, "TTS render failed");
        }
        result
    }

    async fn render_inner(
        &self,
        text: &str,
        lang: &str,
        bound: Duration,
    ) -> Result<Rendered, TtsError> {
        let voice = self.voice_for(lang)?.to_string();
        let text = clean_text(text)?;
        let key = cache_key(self.backend(), &voice, &text);
        if let Some(wav) = lock(&self.inner.memory).get(&key) {
            metrics::counter!("tts_cache_hits_total", "layer" => "memory").increment(1);
            return Ok(Rendered { wav, voice, source: RenderSource::Memory, key });
        }
        let mut outcome = self.join_or_start(key, &voice, text);
        let waited = tokio::time::timeout(bound, outcome.wait_for(Option::is_some)).await;
        let no_answer = || TtsError::Engine("the render task ended without an answer".into());
        let (wav, source) = match waited {
            Err(_) => return Err(TtsError::Timeout(bound)),
            Ok(Ok(done)) => done.clone().unwrap_or_else(|| Err(no_answer()))?,
            Ok(Err(_)) => return Err(no_answer()),
        };
        Ok(Rendered { wav, voice, source, key })
    }

    /// The render of `key` under way, or a new one.
    fn join_or_start(
        &self,
        key: CacheKey,
        voice: &str,
        text: String,
    ) -> watch::Receiver<Option<Outcome>> {
        let mut in_flight = lock(&self.inner.in_flight);
        if let Some(outcome) = in_flight.get(&key) {
            return outcome.clone();
        }
        // A render that just finished left its audio in memory before leaving `in_flight`.
        if let Some(wav) = lock(&self.inner.memory).get(&key) {
            return watch::channel(Some(Ok((wav, RenderSource::Memory)))).1;
        }
        let (sender, outcome) = watch::channel(None);
        in_flight.insert(key, outcome.clone());
        let (tts, voice) = (self.clone(), voice.to_string());
        tokio::spawn(async move {
            // Leaves `in_flight` however the task ends, so a key is never stuck.
            let _entry = InFlight { tts: tts.clone(), key };
            let limit = tts.inner.limit;
            let result = tokio::time::timeout(limit, tts.produce(key, &voice, &text))
                .await
                .unwrap_or(Err(TtsError::Timeout(limit)));
            // Stored on disk before anyone is told (a write of a few hundred KiB), so a
            // render that returned from the engine is on disk too.
            if let (Ok((wav, RenderSource::Engine)), Some(disk)) = (&result, &tts.inner.disk) {
                disk.clone().store(key, wav.clone()).await;
            }
            let _ = sender.send(Some(result));
        });
        outcome
    }

    /// The sentence from the disk cache, else from the engine; in memory afterwards.
    async fn produce(&self, key: CacheKey, voice: &str, text: &str) -> Outcome {
        let stored = match self.inner.disk.clone() {
            Some(disk) => disk.load(key).await,
            None => None,
        };
        if let Some(wav) = stored {
            metrics::counter!("tts_cache_hits_total", "layer" => "disk").increment(1);
            lock(&self.inner.memory).insert(key, wav.clone());
            return Ok((wav, RenderSource::Disk));
        }
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| TtsError::Engine("the TTS service is shutting down".into()))?;
        let started = Instant::now();
        let wav = self.inner.backend.synthesize(text, voice).await;
        metrics::histogram!("tts_render_seconds").record(started.elapsed().as_secs_f64());
        drop(permit);
        let wav = checked_wav(wav?).await?;
        lock(&self.inner.memory).insert(key, wav.clone());
        Ok((wav, RenderSource::Engine))
    }
}

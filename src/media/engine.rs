//! What every call's media shares (runtime layer): the worker threads, the prompt cache,
//! and the configured welcome prompt and hold music.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{CodecName, MediaConfig};
use crate::media::prompt::{Limits, Prompt, PromptCache, PromptError};
use crate::media::rtp_ports::RtpSockets;
use crate::media::session::{MediaError, MediaSession, SessionSettings};
use crate::media::worker::MediaWorkers;
use crate::sdp::Negotiated;

/// Distinct prompts kept encoded (per codec).
const PROMPT_CACHE_ENTRIES: usize = 256;

/// The media engine; cheap to clone.
#[derive(Clone)]
pub struct MediaEngine {
    workers: MediaWorkers,
    prompts: Arc<PromptCache>,
    welcome: PathBuf,
    hold_music: PathBuf,
    settings: SessionSettings,
}

/// The process's prompt cache: every engine in the process (one in production; many in
/// tests) shares it, so each distinct audio is encoded at most once per codec.
fn shared_prompt_cache() -> Arc<PromptCache> {
    static CACHE: OnceLock<Arc<PromptCache>> = OnceLock::new();
    CACHE
        .get_or_init(|| Arc::new(PromptCache::new(Limits::default(), PROMPT_CACHE_ENTRIES)))
        .clone()
}

impl MediaEngine {
    /// Starts the workers and encodes the welcome prompt and hold music for every
    /// configured codec (a missing file is logged; calls then hear silence instead).
    pub async fn start(config: &MediaConfig) -> std::io::Result<MediaEngine> {
        let engine = MediaEngine {
            workers: MediaWorkers::start(config.workers, config.batched_send)?,
            prompts: shared_prompt_cache(),
            welcome: config.welcome_prompt.clone(),
            hold_music: config.hold_music.clone(),
            settings: SessionSettings {
                rtp_timeout: Duration::from_secs(config.rtp_timeout_s),
                cname: format!("zendesk-ivr@{}", std::process::id()),
            },
        };
        let preload = engine.clone();
        let codecs = config.codecs.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for codec in codecs {
                for path in [&preload.welcome, &preload.hold_music] {
                    if let Err(err) = preload.prompts.file(path, codec) {
                        warn!(path = %path.display(), ?codec, %err, "cannot load audio");
                    }
                }
            }
        })
        .await;
        info!(workers = engine.workers.len(), "media engine started");
        Ok(engine)
    }

    /// Starts one call's media.
    pub fn session(
        &self,
        sockets: RtpSockets,
        media: &Negotiated,
    ) -> Result<MediaSession, MediaError> {
        MediaSession::start(&self.workers, sockets, media, self.settings.clone())
    }

    /// A WAV file as a prompt for `codec` (encoded on first use, then shared).
    pub fn prompt(&self, path: &Path, codec: CodecName) -> Result<Prompt, PromptError> {
        self.prompts.file(path, codec)
    }

    /// The configured welcome prompt.
    pub fn welcome(&self, codec: CodecName) -> Result<Prompt, PromptError> {
        self.prompt(&self.welcome, codec)
    }

    /// The configured hold music.
    pub fn hold_music(&self, codec: CodecName) -> Result<Prompt, PromptError> {
        self.prompt(&self.hold_music, codec)
    }

    /// Our RTCP CNAME.
    pub fn cname(&self) -> &str {
        &self.settings.cname
    }

    /// The shared prompt cache (for TTS output).
    pub fn prompt_cache(&self) -> &PromptCache {
        &self.prompts
    }
}

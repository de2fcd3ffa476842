//! The flow's inputs, outputs and settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, ConfigError, MenuDefault, TransferMode};
use crate::ivr::outcome::{CallOutcome, PathStep, TransferFailure};
use crate::ivr::prompts::{Language, MenuKeys, Prompts};
use crate::ivr::routing::{Route, Router};
use crate::media::dtmf::DigitSource;
use crate::zendesk::model::DipOutcome;

/// Names one `Play` action, so a late "finished" for an older one is ignored.
pub type PlayId = u32;

/// How our side of the call ended, as the flow needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The caller hung up (BYE, or CANCEL before the answer).
    Caller,
    /// We hung up (after the flow's `Hangup`).
    Us,
    /// The call failed (transport error, SIP timeout).
    Failed,
}

/// Progress of the transfer in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferUpdate {
    /// A provisional status (REFER NOTIFY 100/180, or the agent's 180).
    Progress(u16),
    /// REFER: the caller's phone reached the target. Bridge: the agent answered.
    Connected,
    Failed(TransferFailure),
}

/// What happens to the call, fed into the flow.
// `Dip` comes once per call; boxing it would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FlowEvent {
    Answered,
    /// The data dip's outcome (once).
    Dip(DipOutcome),
    Digit {
        digit: char,
        source: DigitSource,
    },
    /// A `Play` ended: played out, or stopped (by a key, or by a newer play).
    PlaybackFinished {
        id: PlayId,
        interrupted: bool,
    },
    /// The sentence asked for by [`Action::Render`] is ready (`ok`) or failed or was late.
    Rendered {
        ok: bool,
    },
    Transfer(TransferUpdate),
    /// No RTP from the caller for the configured time.
    MediaTimeout,
    /// The server is shutting down: hang up now.
    ShutdownRequested,
    /// The bridged agent hung up.
    AgentHungUp,
    /// The agent answered but the call could not be bridged (the caller's media is gone).
    BridgeFailed(TransferFailure),
    Ended(EndCause),
}

/// A sentence in a language.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Sentence {
    pub lang: Language,
    pub text: String,
}

/// One thing to play: a file or a sentence to speak (never codec frames).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Say {
    File(PathBuf),
    Sentence(Sentence),
}

/// A transfer to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub queue: String,
    pub target: String,
    pub mode: TransferMode,
    pub queue_priority: Option<u8>,
    pub ticket_id: Option<u64>,
    pub user_id: Option<u64>,
}

/// What the flow reports when it is done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowReport {
    pub outcome: CallOutcome,
    pub path: Vec<PathStep>,
    /// From the answer to the transfer or the hang-up.
    pub ivr_duration: Duration,
    /// Waiting for an agent (hold music while targets rang), in all.
    pub wait: Duration,
    /// Bridged to an agent.
    pub talk: Duration,
    pub language: Language,
    pub route: Option<Route>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Replace what plays with `items`, once; with `barge_in`, a key stops it.
    Play {
        id: PlayId,
        items: Vec<Say>,
        barge_in: bool,
    },
    /// Replace what plays with hold music, in a loop.
    HoldMusic,
    /// Stop playing (silence).
    Stop,
    /// Render this sentence now (it will be played soon); answer with `Rendered`.
    Render(Sentence),
    Transfer(TransferRequest),
    /// Give up on the transfer in progress (cancel the agent leg).
    CancelTransfer,
    Hangup,
    Finish(FlowReport),
}

/// The flow's settings, from config.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub welcome: Option<PathBuf>,
    pub prompts: Arc<Prompts>,
    pub router: Arc<Router>,
    pub key_agent: char,
    pub key_end: char,
    pub key_repeat: char,
    pub menu_attempts: u32,
    pub menu_default: MenuDefault,
    pub max_subject_chars: usize,
    /// Wait for a key after the menu.
    pub no_input: Duration,
    /// The longest the flow waits for the dip after the answer (a guard: the dip has its
    /// own deadline).
    pub dip_wait: Duration,
    /// The longest the flow waits for the status sentence's render (a guard).
    pub render_wait: Duration,
    pub refer_wait: Duration,
    pub retry_interval: Duration,
    pub max_wait: Duration,
    pub max_call: Option<Duration>,
    pub mode: TransferMode,
    pub refer_fallback_bridge: bool,
    /// A key that comes again by another DTMF method within this window counts once.
    pub duplicate_window: Duration,
}

/// Margin on the runtime's own deadlines before the flow's guards fire.
const GUARD: Duration = Duration::from_millis(500);

impl FlowSettings {
    pub fn from_config(
        config: &Config,
        render_timeout: Duration,
    ) -> Result<FlowSettings, ConfigError> {
        let ivr = &config.ivr;
        let keys = MenuKeys { agent: ivr.key_agent, end: ivr.key_end, repeat: ivr.key_repeat };
        let prompts = Prompts::new(&ivr.default_language, &ivr.prompts)
            .map_err(|err| ConfigError::Invalid(err.to_string()))?
            .with_keys(keys);
        let welcome = config.media.welcome_prompt.clone();
        Ok(FlowSettings {
            welcome: (!welcome.as_os_str().is_empty()).then_some(welcome),
            prompts: Arc::new(prompts),
            router: Arc::new(Router::from_config(&config.routing)?),
            key_agent: ivr.key_agent,
            key_end: ivr.key_end,
            key_repeat: ivr.key_repeat,
            menu_attempts: ivr.menu_attempts.max(1),
            menu_default: ivr.menu_default,
            max_subject_chars: ivr.max_subject_chars,
            no_input: Duration::from_secs(ivr.no_input_s),
            dip_wait: config.zendesk.deadline() + GUARD,
            render_wait: render_timeout + GUARD,
            refer_wait: Duration::from_secs(config.transfer.refer_wait_s),
            retry_interval: Duration::from_secs(config.routing.retry_interval_s.max(1)),
            max_wait: Duration::from_secs(config.transfer.max_wait_s),
            max_call: (config.sip.max_call_s > 0)
                .then(|| Duration::from_secs(config.sip.max_call_s)),
            mode: config.transfer.mode,
            refer_fallback_bridge: config.transfer.refer_fallback_bridge,
            duplicate_window: Duration::from_millis(500),
        })
    }
}

/// Who is calling, as known at the INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// E.164, when the caller ID is a number.
    pub number: Option<String>,
}

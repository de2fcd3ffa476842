//! `zendesk-ivr call`: a test caller on the project's own SIP stack. It places one call
//! through its own endpoint (transports, transaction layer and UA core on a free port),
//! presses digits at a given time (RFC 4733 events, SIP INFO or in-band tones), records
//! what it hears, accepts a REFER from the far end (202 and NOTIFY) and, when asked,
//! calls the REFER's target. At the end it reports what it measured ([`CallReport`]).
//!
//! The timeline ([`script`]) and the RTP stream ([`rtp`]) are sans-IO; [`session`] and
//! [`media`] are the runtime around them.

pub mod media;
pub mod report;
pub mod rtp;
pub mod script;
pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::sip::message::Transport;

pub use report::{CallReport, HangupCause, Party, ReferReport};
pub use session::place_call;

/// How the caller sends its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DtmfMode {
    /// RFC 4733 telephone-event packets (tones when the far end did not negotiate them).
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`.
    Info,
    /// Tones in the audio.
    Inband,
}

/// The SIP transport of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CallTransport {
    Udp,
    Tcp,
}

impl From<CallTransport> for Transport {
    fn from(value: CallTransport) -> Transport {
        match value {
            CallTransport::Udp => Transport::Udp,
            CallTransport::Tcp => Transport::Tcp,
        }
    }
}

/// One test call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// A `sip:` URI.
    pub target: String,
    /// The caller's number (the From user).
    pub from: String,
    /// Keys to press, in order.
    pub digits: String,
    /// When to press the first key, after the answer.
    pub dtmf_at: Duration,
    pub dtmf_mode: DtmfMode,
    /// Where to write what was heard (WAV, 8 kHz mono).
    pub record: Option<PathBuf>,
    /// The longest the call lasts, from the INVITE; then the caller hangs up.
    pub duration: Duration,
    /// Call the target of a REFER from the far end.
    pub follow_refer: bool,
    pub transport: CallTransport,
}

/// Why the call could not be placed at all.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error("{0:?} is not a DTMF key (0-9, *, #, A-D)")]
    NotADigit(char),
    #[error("the target must be a sip: URI with a host: {0}")]
    Target(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("cannot bind the caller's sockets: {0}")]
    Bind(std::io::Error),
    #[error("cannot place the call: {0}")]
    Dial(#[from] crate::sip::endpoint::DialError),
    #[error("cannot write the recording {path}: {source}")]
    Recording { path: PathBuf, source: hound::Error },
}

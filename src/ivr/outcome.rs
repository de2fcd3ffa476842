//! How a call went through the IVR: the typed outcome and the menu path that the flow
//! reports when it finishes, and that the post-call comment states.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::TransferMode;
use crate::zendesk::model::Priority;

/// Where in the flow the caller was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Ringing,
    Welcome,
    Lookup,
    Status,
    Menu,
    Transfer,
    Busy,
    Waiting,
    Goodbye,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Ringing => "while ringing",
            Step::Welcome => "during the welcome",
            Step::Lookup => "during the lookup",
            Step::Status => "during the status",
            Step::Menu => "during the menu",
            Step::Transfer => "during the transfer",
            Step::Busy => "at the all-agents-busy menu",
            Step::Waiting => "while waiting for an agent",
            Step::Goodbye => "during the goodbye",
        })
    }
}

/// Why we hung up ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// No RTP from the caller for `media.rtp_timeout_s`.
    NoMedia,
    /// The call reached `sip.max_call_s`.
    TimeLimit,
    /// The call failed (a transport error, a SIP timeout).
    Error,
    /// The server shut down while the call was up.
    Shutdown,
}

/// How the call ended, for the comment, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Sent to an agent: by REFER (the caller's phone reached the target) or bridged.
    Transferred { queue: String, target: String, mode: TransferMode },
    /// The caller chose to end the call.
    EndedByCaller,
    /// The caller hung up before the flow was done.
    HungUp { step: Step },
    /// No agent could take the call, and the caller's wait ran out.
    AllAgentsBusy { queue: String },
    /// The caller asked to be called back.
    CallbackRequested { number: Option<String> },
    /// The transfer failed and the call ended before another try.
    TransferFailed { queue: String, reason: String },
    /// No key in the menu, and the menu's default is to hang up.
    NoInput,
    /// We hung up.
    Dropped { reason: DropReason },
}

impl CallOutcome {
    /// A short fixed name, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            CallOutcome::Transferred { .. } => "transferred",
            CallOutcome::EndedByCaller => "ended_by_caller",
            CallOutcome::HungUp { .. } => "hung_up",
            CallOutcome::AllAgentsBusy { .. } => "all_agents_busy",
            CallOutcome::CallbackRequested { .. } => "callback_requested",
            CallOutcome::TransferFailed { .. } => "transfer_failed",
            CallOutcome::NoInput => "no_input",
            CallOutcome::Dropped { .. } => "dropped",
        }
    }
}

impl fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallOutcome::Transferred { queue, target, .. } => {
                write!(f, "transferred to the {queue} queue ({target})")
            }
            CallOutcome::EndedByCaller => f.write_str("the caller ended the call from the menu"),
            CallOutcome::HungUp { step } => write!(f, "the caller hung up {step}"),
            CallOutcome::AllAgentsBusy { queue } => {
                write!(f, "all agents busy in the {queue} queue; the caller gave up waiting")
            }
            CallOutcome::CallbackRequested { number: Some(n) } => {
                write!(f, "callback requested to {n}")
            }
            CallOutcome::CallbackRequested { number: None } => {
                f.write_str("callback requested (number withheld)")
            }
            CallOutcome::TransferFailed { queue, reason } => {
                write!(f, "transfer to the {queue} queue failed: {reason}")
            }
            CallOutcome::NoInput => f.write_str("no input in the menu; the call was ended"),
            CallOutcome::Dropped { reason: DropReason::NoMedia } => {
                f.write_str("ended by the IVR: no audio from the caller")
            }
            CallOutcome::Dropped { reason: DropReason::TimeLimit } => {
                f.write_str("ended by the IVR: the call reached its time limit")
            }
            CallOutcome::Dropped { reason: DropReason::Error } => f.write_str("the call failed"),
            CallOutcome::Dropped { reason: DropReason::Shutdown } => {
                f.write_str("ended by the IVR: the service was shutting down")
            }
        }
    }
}

/// Why one transfer attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferFailure {
    /// The target (or for REFER the caller's phone) answered with this status.
    Refused { status: u16 },
    /// No answer, or no final NOTIFY, in time.
    TimedOut,
    /// The target's probe says it is down: skipped without a call.
    Unavailable,
    /// Anything else (no RTP port, media that cannot be bridged, an endpoint error).
    Error { message: String },
}

impl fmt::Display for TransferFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferFailure::Refused { status } => write!(f, "refused ({status})"),
            TransferFailure::TimedOut => f.write_str("no answer in time"),
            TransferFailure::Unavailable => f.write_str("down, skipped"),
            TransferFailure::Error { message } => write!(f, "failed ({message})"),
        }
    }
}

/// One thing that happened in the flow, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PathStep {
    StatusHeard,
    Pressed { key: char },
    Invalid { key: char },
    NoInput,
    Routed { queue: String, ticket_priority: Option<Priority> },
    TargetAnswered { target: String, after: Duration },
    TargetFailed { target: String, failure: TransferFailure },
    AgentsBusy,
    KeptWaiting,
}

impl fmt::Display for PathStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathStep::StatusHeard => f.write_str("status heard"),
            PathStep::Pressed { key } => write!(f, "pressed {key}"),
            PathStep::Invalid { key } => write!(f, "pressed {key} (not in the menu)"),
            PathStep::NoInput => f.write_str("no input"),
            PathStep::Routed { queue, ticket_priority: Some(p) } => {
                write!(f, "{} ticket → {queue} queue", p.as_str())
            }
            PathStep::Routed { queue, ticket_priority: None } => write!(f, "→ {queue} queue"),
            PathStep::TargetAnswered { target, after } => {
                write!(f, "{target} answered after {} s", after.as_secs())
            }
            PathStep::TargetFailed { target, failure } => write!(f, "{target} {failure}"),
            PathStep::AgentsBusy => f.write_str("all agents busy"),
            PathStep::KeptWaiting => f.write_str("chose to wait"),
        }
    }
}

/// The path as one line: "status heard, pressed 1, urgent ticket → priority queue, ...".
pub fn path_text(path: &[PathStep]) -> String {
    if path.is_empty() {
        return "-".into();
    }
    path.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

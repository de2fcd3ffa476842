//! One call (runtime layer): a task per call, in a tracing span that carries the Call-ID.
//! It reads the caller ID, starts the Zendesk data dip, takes RTP ports, answers, and
//! then the driver ([`driver`]) feeds the call's events into the IVR flow and carries out
//! its actions ([`act`]). When the call ends, its comment goes to the outbox.

mod act;
mod driver;
mod outcome_metrics;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{Instrument, info, info_span};

use crate::config::Config;
use crate::ivr::flow::{FlowReport, FlowSettings};
use crate::ivr::outcome::path_text;
use crate::media::engine::MediaEngine;
use crate::media::rtp_ports::RtpPorts;
use crate::outbox::Outbox;
use crate::post_call;
use crate::sip::ani::{self, Ani, CallerId};
use crate::sip::dialog::EndReason;
use crate::sip::endpoint::{EndpointHandle, IncomingCall};
use crate::status::CallBoard;
use crate::transfer::CallRegistry;
use crate::transfer::probe::TargetStates;
use crate::tts::Tts;
use crate::zendesk::client::ZendeskClient;
use crate::zendesk::model::DipOutcome;

/// What every call shares.
#[derive(Clone)]
pub struct CallContext {
    pub config: Arc<Config>,
    pub endpoint: EndpointHandle,
    pub rtp_ports: RtpPorts,
    pub media: MediaEngine,
    /// The data dip; `None` runs calls without Zendesk.
    pub zendesk: Option<ZendeskClient>,
    /// Where post-call comments go; `None` drops them (with a log line).
    pub outbox: Option<Outbox>,
    /// Established calls' control channels, by Call-ID.
    pub calls: CallRegistry,
    /// The IVR's settings, built once from config.
    pub flow: Arc<FlowSettings>,
    pub tts: Tts,
    /// Which transfer targets answer their probes.
    pub targets: TargetStates,
    /// The status page's calls: active (with the flow's step) and finished.
    pub board: CallBoard,
}

/// How a call went: for logs, the post-call comment, and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    pub call_id: String,
    pub ani: Ani,
    pub answered: bool,
    /// How the SIP call ended.
    pub end: Option<EndReason>,
    pub started_at: SystemTime,
    pub duration: Duration,
    /// DTMF digits the caller pressed, in order.
    pub digits: String,
    /// How each digit of `digits` came (RFC 4733, SIP INFO, in-band), in order.
    pub digit_sources: Vec<crate::media::dtmf::DigitSource>,
    /// The data dip's result (user, latest unsolved ticket), when Zendesk is configured.
    pub dip: Option<DipOutcome>,
    /// What the IVR made of the call: outcome, path, durations. `None` when the call was
    /// never answered (rejected for want of ports).
    pub report: Option<FlowReport>,
}

/// Runs one call to its end, then queues its comment; the call counts as finished only
/// after that.
pub async fn run(ctx: CallContext, incoming: IncomingCall) -> CallSummary {
    let span = info_span!("call", call_id = %incoming.call_id);
    async move {
        let started = Instant::now();
        let sip = &ctx.config.sip;
        let source: IpAddr = incoming.source.addr.ip();
        let ani =
            ani::caller_id(&incoming.invite, source, &sip.trusted_sources, &sip.default_region);
        match &ani.caller {
            CallerId::Number(n) => info!(caller = %n.e164, source = ?ani.source, "incoming call"),
            CallerId::Anonymous => info!("incoming call from a withheld number"),
            CallerId::NotANumber(user) => {
                info!(caller = ?user, "incoming call from a non-numeric caller")
            }
        }
        let mut summary = CallSummary {
            call_id: incoming.call_id.clone(),
            ani,
            answered: false,
            end: None,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            digits: String::new(),
            digit_sources: Vec::new(),
            dip: None,
            report: None,
        };
        let display_name = display_name(&incoming.invite);
        let mut board =
            ctx.board.begin(&summary.call_id, &summary.ani.caller, display_name.as_deref());
        let mut dip = driver::start_dip(&ctx, &summary);
        driver::drive(&ctx, incoming, &mut summary, &mut dip, &mut board).await;
        summary.duration = started.elapsed();
        // A call that ended before the dip answered still needs its outcome for the
        // comment (which ticket, or the caller's number to find it later); the dip has its
        // own deadline.
        if let Some(task) = dip {
            summary.dip = task.await.ok();
        }
        if let Some(report) = &summary.report {
            info!(outcome = %report.outcome, path = %path_text(&report.path), "call finished");
            outcome_metrics::record(report);
        }
        post_call::record(&summary, &ctx.config.zendesk, ctx.outbox.as_ref()).await;
        board.finish(&summary);
        summary
    }
    .instrument(span)
    .await
}

/// The From header's display name, for the status page (untrusted text).
fn display_name(invite: &rsip::Request) -> Option<String> {
    use crate::sip::header_text as ht;
    let from = ht::first(&invite.headers, "From", Some("f"))?;
    let name = ht::unquote(ht::addr_parts(&from).ok()?.display?.trim());
    (!name.is_empty()).then(|| name.to_string())
}

/// One line for the log: who, and which ticket.
fn describe(outcome: &DipOutcome) -> String {
    match outcome {
        DipOutcome::Found { user, ticket: Some(t), .. } => {
            format!("user {} with ticket {} ({:?}, {:?})", user.id, t.id, t.status, t.priority)
        }
        DipOutcome::Found { user, ticket: None, .. } => {
            format!("user {} with no open ticket", user.id)
        }
        DipOutcome::UnknownCaller => "unknown caller".into(),
        DipOutcome::Anonymous => "anonymous caller: skipped".into(),
        DipOutcome::Fallback { reason } => format!("fallback: {reason:?}"),
    }
}

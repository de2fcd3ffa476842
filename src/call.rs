//! The per-call driver (runtime layer): one task per call, in a tracing span that carries
//! the Call-ID. It reads the caller ID, starts the Zendesk data dip, takes RTP ports,
//! answers, follows the call's events until it ends, and queues the post-call comment.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{Config, TransferMode};
use crate::media::call_media::{CallMedia, CallMediaEvent};
use crate::media::engine::MediaEngine;
use crate::media::rtp_ports::RtpPorts;
use crate::outbox::Outbox;
use crate::post_call;
use crate::sip::ani::{self, Ani, CallerId};
use crate::sip::dialog::{CallEvent, CallHandle, EndReason};
use crate::sip::endpoint::{Command, EndpointHandle, IncomingCall};
use crate::transfer::bridge::{self, CallerLeg};
use crate::transfer::{
    CONTROL_QUEUE, CallControl, CallRegistry, REFER_WAIT, ReferStep, ReferWatch, TransferError,
    TransferRecord, TransferResult,
};
use crate::zendesk::client::{DipOutcome, ZendeskClient};

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
    /// Established calls' control channels (transfer requests), by Call-ID.
    pub calls: CallRegistry,
}

/// How a call went: for logs, the post-call comment, and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    pub call_id: String,
    pub ani: Ani,
    pub answered: bool,
    /// How it ended, as text (for logs).
    pub end: String,
    pub end_reason: Option<EndReason>,
    pub started_at: SystemTime,
    pub duration: Duration,
    /// DTMF digits the caller pressed, in order.
    pub digits: String,
    /// The data dip's result (user, latest unsolved ticket), when Zendesk is configured.
    pub dip: Option<DipOutcome>,
    /// The last transfer attempt, if any.
    pub transfer: Option<TransferRecord>,
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
                info!(caller = %user, "incoming call from a non-numeric caller")
            }
        }
        // The dip runs while the call is answered; it has its own deadline.
        let dip = ctx.zendesk.clone().map(|client| {
            let number = match &ani.caller {
                CallerId::Number(n) => Some(n.clone()),
                _ => None,
            };
            tokio::spawn(
                async move {
                    let outcome = client.data_dip(number.as_ref()).await;
                    info!(outcome = %describe(&outcome), "data dip");
                    outcome
                }
                .in_current_span(),
            )
        });
        let mut summary = CallSummary {
            call_id: incoming.call_id.clone(),
            ani,
            answered: false,
            end: String::new(),
            end_reason: None,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            digits: String::new(),
            dip: None,
            transfer: None,
        };
        drive(&ctx, incoming, &mut summary).await;
        summary.duration = started.elapsed();
        if let Some(dip) = dip {
            summary.dip = dip.await.ok();
        }
        post_call::record(&summary, &ctx.config.zendesk, ctx.outbox.as_ref()).await;
        summary
    }
    .instrument(span)
    .await
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

async fn drive(ctx: &CallContext, mut incoming: IncomingCall, summary: &mut CallSummary) {
    let sip = &ctx.config.sip;
    let call = incoming.call;
    let rtp = match ctx.rtp_ports.allocate().await {
        Ok(sockets) => sockets,
        Err(err) => {
            warn!(%err, "no RTP port; rejecting the call");
            ctx.endpoint.send(Command::Reject { call, status: 503 });
            summary.end = "rejected: no RTP port".into();
            summary.end_reason = Some(EndReason::Rejected);
            return;
        }
    };
    let answer_delay = Duration::from_millis(sip.answer_delay_ms);
    if !answer_delay.is_zero() {
        // Ring for a moment; the caller may hang up (CANCEL) meanwhile.
        let ring = tokio::time::sleep(answer_delay);
        tokio::pin!(ring);
        loop {
            tokio::select! {
                () = &mut ring => break,
                event = incoming.events.recv() => match event {
                    Some(CallEvent::Terminated { reason, .. }) => {
                        info!(?reason, "caller hung up while ringing");
                        summary.end = format!("{reason:?}");
                        summary.end_reason = Some(reason);
                        return;
                    }
                    Some(other) => debug!(event = ?other, "call event while ringing"),
                    None => return,
                },
            }
        }
    }
    ctx.endpoint.send(Command::Accept { call, local_rtp: rtp.rtp_addr() });
    let mut media = CallMedia::new(ctx.media.clone(), rtp);
    let mut limit = match sip.max_call_s {
        0 => None,
        secs => Some(tokio::time::Instant::now() + Duration::from_secs(secs)),
    };
    let (control_tx, mut control) = mpsc::channel(CONTROL_QUEUE);
    let mut control_tx = Some(control_tx);
    let mut registration = None;
    let mut refer: Option<ReferWatch> = None;
    loop {
        let over_time = async {
            match limit {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let refer_expired = async {
            match &refer {
                Some(watch) => tokio::time::sleep_until(watch.deadline).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = incoming.events.recv() => event,
            media_event = media.next_event() => {
                match media_event {
                    CallMediaEvent::Digit(d) => debug!(digit = %d.digit, "digit"),
                    CallMediaEvent::RtpTimeout => {
                        info!("no RTP from the caller; hanging up");
                        ctx.endpoint.send(Command::Hangup { call });
                    }
                }
                continue;
            }
            Some(request) = control.recv() => {
                let CallControl::Transfer { target, reply } = request;
                if refer.is_some() || summary.transfer.as_ref().is_some_and(TransferRecord::succeeded) {
                    let _ = reply.send(Err(TransferError::InProgress));
                    continue;
                }
                let _ = reply.send(Ok(()));
                match ctx.config.transfer.mode {
                    TransferMode::Refer => {
                        info!(%target, "transferring by REFER");
                        ctx.endpoint.send(Command::Refer { call, target: target.clone() });
                        refer = Some(ReferWatch {
                            target,
                            deadline: tokio::time::Instant::now() + REFER_WAIT,
                        });
                        continue;
                    }
                    TransferMode::Bridge => {
                        info!(%target, "transferring by bridge");
                        let from_user = from_user(summary);
                        let caller = CallerLeg {
                            call,
                            events: &mut incoming.events,
                            control: &mut control,
                            media: &mut media,
                        };
                        let end = bridge::bridge(ctx, caller, &target, &from_user).await;
                        info!(result = ?end.result, "bridge transfer ended");
                        summary.transfer = Some(TransferRecord {
                            target,
                            mode: TransferMode::Bridge,
                            result: end.result,
                        });
                        if let Some(reason) = end.caller_ended {
                            summary.end = format!("{reason:?}");
                            summary.end_reason = Some(reason);
                            break;
                        }
                        continue;
                    }
                }
            }
            () = refer_expired => {
                if let Some(watch) = refer.take() {
                    warn!(target = %watch.target, "no final NOTIFY for the REFER in time; keeping the caller");
                    summary.transfer = Some(record_refer(watch, TransferResult::TimedOut));
                    media.play_hold_music();
                }
                continue;
            }
            () = over_time => {
                info!(max_call_s = sip.max_call_s, "call reached its time limit; hanging up");
                ctx.endpoint.send(Command::Hangup { call });
                limit = None;
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            CallEvent::Established { media: negotiated, .. } => {
                summary.answered = true;
                info!(codec = ?negotiated.codec.name, remote = ?negotiated.remote_rtp, "call established");
                media.established(&negotiated);
                if let Some(tx) = control_tx.take() {
                    registration = Some(ctx.calls.register(&summary.call_id, tx));
                }
            }
            CallEvent::MediaChanged { media: negotiated, .. } => {
                info!(direction = ?negotiated.direction, remote = ?negotiated.remote_rtp, "media changed");
                media.changed(&negotiated);
            }
            CallEvent::Info { content_type, body, .. } => media.sip_info(&content_type, &body),
            CallEvent::ReferProgress { status, .. } => {
                refer_progress(ctx, call, &mut refer, status, &mut media, summary)
            }
            CallEvent::Terminated { reason, .. } => {
                info!(?reason, "call ended");
                if let Some(watch) = refer.take() {
                    summary.transfer = Some(record_refer(watch, TransferResult::CallerHungUp));
                }
                summary.end = format!("{reason:?}");
                summary.end_reason = Some(reason);
                break;
            }
            other => debug!(event = ?other, "call event"),
        }
    }
    drop(registration);
    summary.digits = media.digits().to_string();
    drop(media);
}

/// A progress NOTIFY (or the REFER's failure) for the REFER in progress.
fn refer_progress(
    ctx: &CallContext,
    call: CallHandle,
    refer: &mut Option<ReferWatch>,
    status: u16,
    media: &mut CallMedia,
    summary: &mut CallSummary,
) {
    let Some(watch) = refer.as_ref() else {
        debug!(status, "transfer progress with no transfer in progress");
        return;
    };
    match watch.progress(status) {
        ReferStep::Wait => info!(status, "transfer in progress"),
        ReferStep::Done(result) => {
            let Some(watch) = refer.take() else { return };
            if result == TransferResult::Transferred {
                info!(target = %watch.target, status, "caller transferred; hanging up");
                ctx.endpoint.send(Command::Hangup { call });
            } else {
                warn!(target = %watch.target, status, "transfer failed; keeping the caller on hold music");
                media.play_hold_music();
            }
            summary.transfer = Some(record_refer(watch, result));
        }
    }
}

fn record_refer(watch: ReferWatch, result: TransferResult) -> TransferRecord {
    TransferRecord { target: watch.target, mode: TransferMode::Refer, result }
}

/// The user part of the From header when we call an agent for this caller: the caller's
/// number when we know it, so the agent sees who is calling.
fn from_user(summary: &CallSummary) -> String {
    match &summary.ani.caller {
        CallerId::Number(n) => n.e164.clone(),
        _ => "ivr".into(),
    }
}

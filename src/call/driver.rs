//! The call's driver: it pumps the call's SIP events, media events, the dip's outcome,
//! TTS results, the agent leg's events and the flow's timer into the IVR flow, and carries
//! out the actions that come back ([`super::act`]). It decides nothing itself.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, warn};

use super::act::{Prepared, Stage};
use super::{CallContext, CallSummary, describe};
use crate::ivr::flow::{Caller, EndCause, Flow, FlowEvent, TransferUpdate};
use crate::ivr::outcome::TransferFailure;
use crate::media::bridge_relay::RelaySettings;
use crate::media::call_media::{CallMedia, CallMediaEvent};
use crate::media::playback::StopReason;
use crate::sip::ani::CallerId;
use crate::sip::dialog::{CallEvent, CallHandle, EndReason};
use crate::sip::endpoint::{Command, IncomingCall};
use crate::status::CallEntry;
use crate::transfer::bridge::{AgentEvent, AgentLeg};
use crate::transfer::{CONTROL_QUEUE, CallControl};
use crate::zendesk::model::{DipOutcome, FallbackReason};

/// Results of work the driver started in other tasks.
pub(super) enum Done {
    /// A play's audio is ready (or could not be had).
    Prepared(Prepared),
    /// The status sentence's render ended.
    Rendered(bool),
}

/// What woke the driver.
enum Wake {
    Sip(Option<CallEvent>),
    Media(CallMediaEvent),
    Dip(Option<DipOutcome>),
    Done(Done),
    Agent(AgentEvent),
    Control(CallControl),
    Timer,
}

/// One call's driver state.
pub(super) struct Driver<'a> {
    pub ctx: &'a CallContext,
    pub call: CallHandle,
    pub flow: Flow,
    pub media: CallMedia,
    pub summary: &'a mut CallSummary,
    pub stage: Stage,
    pub agent: Option<AgentLeg>,
    pub done_tx: mpsc::UnboundedSender<Done>,
    /// The call's place on the status page.
    pub board: &'a mut CallEntry,
    /// Whether audio has been played yet (for `call_first_audio_seconds`).
    pub played: bool,
}

/// Runs the call to its end. `dip` is the data dip started at the INVITE: taken once it
/// answers, else left for the caller to await.
pub(super) async fn drive(
    ctx: &CallContext,
    mut incoming: IncomingCall,
    summary: &mut CallSummary,
    dip: &mut Option<JoinHandle<DipOutcome>>,
    board: &mut CallEntry,
) {
    let call = incoming.call;
    let rtp = match ctx.rtp_ports.allocate().await {
        Ok(sockets) => sockets,
        Err(err) => {
            warn!(%err, "no RTP port; rejecting the call");
            ctx.endpoint.send(Command::Reject { call, status: 503 });
            summary.end = Some(EndReason::Rejected);
            return;
        }
    };
    let caller = Caller {
        number: match &summary.ani.caller {
            CallerId::Number(n) => Some(n.e164.clone()),
            _ => None,
        },
    };
    let local_rtp = rtp.rtp_addr();
    let flow = Flow::new(Instant::now(), caller, (*ctx.flow).clone());
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut driver = Driver {
        ctx,
        call,
        flow,
        media: crate::media::call_media::CallMedia::new(ctx.media.clone(), rtp),
        summary,
        stage: Stage::default(),
        agent: None,
        done_tx,
        board,
        played: false,
    };
    // Registered from the start, so a shutdown reaches calls not yet established too (a
    // request queued while ringing is carried out once answered).
    let (control_tx, mut control) = mpsc::channel(CONTROL_QUEUE);
    let registration = ctx.calls.register(&driver.summary.call_id, control_tx);
    if !driver.ring(&mut incoming).await {
        return;
    }
    ctx.endpoint.send(Command::Accept { call, local_rtp });
    let mut ended = false;
    loop {
        driver.carry_out().await;
        driver.board.set_step(driver.flow.step());
        if ended && driver.flow.is_done() {
            break;
        }
        let timer = driver.flow.poll_timeout().map(tokio::time::Instant::from_std);
        let flow_timer = async {
            match timer {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let dip_answer = async {
            match dip.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        let agent_event = async {
            match driver.agent.as_mut() {
                Some(agent) => agent.next_event().await,
                None => std::future::pending().await,
            }
        };
        let wake = tokio::select! {
            event = incoming.events.recv() => Wake::Sip(event),
            event = driver.media.next_event() => Wake::Media(event),
            outcome = dip_answer => Wake::Dip(outcome.ok()),
            Some(result) = done.recv() => Wake::Done(result),
            event = agent_event => Wake::Agent(event),
            Some(request) = control.recv() => Wake::Control(request),
            () = flow_timer => Wake::Timer,
        };
        // The time of the event, not of the wait before it.
        let now = Instant::now();
        match wake {
            Wake::Sip(Some(CallEvent::Established { media, .. })) => {
                driver.summary.answered = true;
                metrics::histogram!("call_answer_seconds").record(since_invite(driver.summary));
                info!(codec = ?media.codec.name, remote = ?media.remote_rtp, "call established");
                driver.media.established(&media);
                driver.flow.handle_event(now, FlowEvent::Answered);
            }
            Wake::Sip(Some(event)) => ended = driver.on_sip(now, event),
            Wake::Sip(None) => {
                driver.flow.handle_event(now, FlowEvent::Ended(EndCause::Failed));
                ended = true;
            }
            Wake::Media(event) => driver.on_media(now, event),
            Wake::Dip(outcome) => {
                *dip = None;
                let outcome = outcome.unwrap_or(DipOutcome::Fallback {
                    reason: FallbackReason::Error { message: "the lookup task failed".into() },
                });
                driver.summary.dip = Some(outcome.clone());
                driver.board.set_dip(&outcome);
                driver.flow.handle_event(now, FlowEvent::Dip(outcome));
            }
            Wake::Done(Done::Prepared(prepared)) => driver.start_playback(now, prepared),
            Wake::Done(Done::Rendered(ok)) => {
                driver.flow.handle_event(now, FlowEvent::Rendered { ok })
            }
            Wake::Agent(event) => driver.on_agent(now, event).await,
            Wake::Control(CallControl::Hangup) => {
                info!("hanging up: the server is shutting down");
                driver.flow.handle_event(now, FlowEvent::ShutdownRequested);
            }
            Wake::Timer => driver.flow.handle_timeout(now),
        }
    }
    drop(registration);
    if let Some(mut agent) = driver.agent.take() {
        agent.hang_up();
    }
    driver.summary.digits = driver.media.digits().to_string();
    driver.summary.digit_sources = driver.media.digit_sources().to_vec();
}

/// Starts the data dip (it runs while the call is answered, with its own deadline). A
/// lab without Zendesk gets a fallback at once.
pub(super) fn start_dip(
    ctx: &CallContext,
    summary: &CallSummary,
) -> Option<JoinHandle<DipOutcome>> {
    let number = match &summary.ani.caller {
        CallerId::Number(n) => Some(n.clone()),
        _ => None,
    };
    let task = match ctx.zendesk.clone() {
        Some(client) => tokio::spawn(
            async move {
                let outcome = client.data_dip(number.as_ref()).await;
                info!(outcome = %describe(&outcome), "data dip");
                outcome
            }
            .in_current_span(),
        ),
        None => tokio::spawn(async {
            DipOutcome::Fallback {
                reason: FallbackReason::Error { message: "Zendesk is disabled".into() },
            }
        }),
    };
    Some(task)
}

impl Driver<'_> {
    /// Rings for `sip.answer_delay_ms`; false if the caller hung up meanwhile.
    async fn ring(&mut self, incoming: &mut IncomingCall) -> bool {
        let delay = Duration::from_millis(self.ctx.config.sip.answer_delay_ms);
        if delay.is_zero() {
            return true;
        }
        let ring = tokio::time::sleep(delay);
        tokio::pin!(ring);
        loop {
            tokio::select! {
                () = &mut ring => return true,
                event = incoming.events.recv() => match event {
                    Some(CallEvent::Terminated { reason, .. }) => {
                        info!(?reason, "caller hung up while ringing");
                        self.summary.end = Some(reason);
                        self.end_flow(Instant::now(), reason);
                        return false;
                    }
                    Some(other) => debug!(event = ?other, "call event while ringing"),
                    None => return false,
                },
            }
        }
    }

    fn end_flow(&mut self, now: Instant, reason: EndReason) {
        let cause = match reason {
            EndReason::RemoteBye | EndReason::Cancelled => EndCause::Caller,
            EndReason::LocalBye => EndCause::Us,
            _ => EndCause::Failed,
        };
        self.flow.handle_event(now, FlowEvent::Ended(cause));
        while let Some(action) = self.flow.poll_action() {
            if let crate::ivr::flow::Action::Finish(report) = action {
                self.summary.report = Some(report);
            }
        }
    }

    /// A SIP event after the answer; true when the call ended.
    fn on_sip(&mut self, now: Instant, event: CallEvent) -> bool {
        match event {
            CallEvent::MediaChanged { media, .. } => {
                info!(direction = ?media.direction, remote = ?media.remote_rtp, "media changed");
                match self.agent.as_ref().filter(|a| a.is_bridged()) {
                    Some(agent) => agent.caller_media_changed(media),
                    None => self.media.changed(&media),
                }
            }
            CallEvent::Info { content_type, body, .. } => {
                match self.agent.as_ref().filter(|a| a.is_bridged()) {
                    Some(agent) => agent.pass_info(agent.call(), content_type, body),
                    None => self.media.sip_info(&content_type, &body),
                }
            }
            CallEvent::ReferProgress { status, .. } if self.agent.is_some() => {
                // A bridge attempt is under way: this is an earlier REFER's news.
                info!(status, "progress of an earlier REFER ignored during a bridge attempt");
            }
            CallEvent::ReferProgress { status, .. } => {
                let update = match status {
                    100..=199 => TransferUpdate::Progress(status),
                    200..=299 => TransferUpdate::Connected,
                    _ => TransferUpdate::Failed(TransferFailure::Refused { status }),
                };
                info!(status, "transfer progress");
                self.flow.handle_event(now, FlowEvent::Transfer(update));
            }
            CallEvent::ReferNotSent { reason, .. } => {
                warn!(%reason, "the REFER was not sent");
                let failure = TransferFailure::Error { message: reason };
                self.flow.handle_event(now, FlowEvent::Transfer(TransferUpdate::Failed(failure)));
            }
            CallEvent::Terminated { reason, .. } => {
                info!(?reason, "call ended");
                self.summary.end = Some(reason);
                if let Some(mut agent) = self.agent.take() {
                    agent.hang_up();
                }
                let cause = match reason {
                    EndReason::RemoteBye | EndReason::Cancelled => EndCause::Caller,
                    EndReason::LocalBye => EndCause::Us,
                    _ => EndCause::Failed,
                };
                self.flow.handle_event(now, FlowEvent::Ended(cause));
                return true;
            }
            other => debug!(event = ?other, "call event"),
        }
        false
    }

    fn on_media(&mut self, now: Instant, event: CallMediaEvent) {
        match event {
            CallMediaEvent::Digit(d) => {
                info!(digit = %d.digit, source = ?d.source, "digit");
                metrics::counter!("dtmf_digits_total", "method" => d.source.as_str()).increment(1);
                self.flow.handle_event(now, FlowEvent::Digit { digit: d.digit, source: d.source });
            }
            CallMediaEvent::PlaybackFinished(f) => {
                if let Some(id) = self.stage.finished(f.id) {
                    let interrupted = f.reason != StopReason::Completed;
                    self.flow.handle_event(now, FlowEvent::PlaybackFinished { id, interrupted });
                }
            }
            CallMediaEvent::RtpTimeout => {
                info!("no RTP from the caller");
                self.flow.handle_event(now, FlowEvent::MediaTimeout);
            }
        }
    }

    async fn on_agent(&mut self, now: Instant, event: AgentEvent) {
        let event = match event {
            AgentEvent::Progress(status) => FlowEvent::Transfer(TransferUpdate::Progress(status)),
            AgentEvent::Answered(agent_media) => self.bridge(agent_media).await,
            AgentEvent::Failed(failure) => {
                self.agent = None;
                FlowEvent::Transfer(TransferUpdate::Failed(failure))
            }
            AgentEvent::Ended => {
                info!("the agent hung up");
                self.agent = None;
                FlowEvent::AgentHungUp
            }
            AgentEvent::MediaTimeout => {
                self.agent = None;
                FlowEvent::MediaTimeout
            }
            AgentEvent::MediaChanged => return,
            AgentEvent::Info { content_type, body } => {
                if let Some(agent) = &self.agent {
                    agent.pass_info(self.call, content_type, body);
                }
                return;
            }
        };
        self.flow.handle_event(now, event);
    }

    /// The agent answered: hand the caller's RTP to the relay. If that fails the caller's
    /// media is gone; the flow ends the call.
    async fn bridge(&mut self, agent_media: crate::sdp::Negotiated) -> FlowEvent {
        let failed = |message: &str| {
            FlowEvent::BridgeFailed(TransferFailure::Error { message: message.into() })
        };
        let Some((detached, caller_media)) = self.media.detach().await else {
            self.agent = None;
            return failed("the caller has no media");
        };
        self.stage = Stage::default();
        let Some(agent) = self.agent.as_mut() else { return failed("the agent leg is gone") };
        let settings = RelaySettings {
            rtp_timeout: Duration::from_secs(self.ctx.config.media.rtp_timeout_s),
            cname: self.ctx.media.cname().to_string(),
        };
        match agent.bridge(detached, caller_media, agent_media, settings) {
            Ok(()) => FlowEvent::Transfer(TransferUpdate::Connected),
            Err(failure) => {
                warn!(%failure, "cannot bridge");
                self.agent = None;
                FlowEvent::BridgeFailed(failure)
            }
        }
    }
}

/// Seconds since the call's INVITE arrived.
pub(super) fn since_invite(summary: &CallSummary) -> f64 {
    summary.started_at.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

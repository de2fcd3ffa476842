//! One test call (runtime layer): its own SIP endpoint on a free port, the call, the
//! REFER's target when followed, the script's digits and hang-up, and the report.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::media::{CallerMedia, Heard, write_wav};
use super::report::{CallReport, HangupCause, Party, ReferReport};
use super::rtp::{DIGIT_MS, RtpDigit};
use super::script::{Script, ScriptAction};
use super::{CallOptions, CallerError, DtmfMode};
use crate::config::CodecName;
use crate::media::dtmf::event_code;
use crate::sip::dialog::{CallEvent, CallHandle, EndReason, Ua, UaConfig};
use crate::sip::endpoint::{self, Command, EndpointHandle, IncomingCall};
use crate::sip::header_text;
use crate::sip::message::{Limits, Transport};
use crate::sip::transaction::{TimerConfig, TransactionLayer};
use crate::sip::transport::Transports;

/// How long the endpoint keeps running after the last call ended, so that its BYE (or
/// the answer to the far end's) leaves before the process does.
const LINGER: Duration = Duration::from_millis(300);

/// The IP address this host sends from towards `to` (no packet is sent).
fn local_ip_towards(to: SocketAddr) -> std::io::Result<IpAddr> {
    if to.ip().is_loopback() {
        return Ok(to.ip());
    }
    let probe = StdUdpSocket::bind(("0.0.0.0", 0))?;
    probe.connect(to)?;
    Ok(probe.local_addr()?.ip())
}

async fn resolve(target: &str) -> Result<SocketAddr, CallerError> {
    if let Some(addr) = header_text::ip_host(target) {
        return Ok(addr);
    }
    let (host, port) =
        header_text::host_port(target).ok_or_else(|| CallerError::Target(target.to_string()))?;
    let failed = |source| CallerError::Resolve { host: host.clone(), source };
    let mut found =
        tokio::net::lookup_host((host.as_str(), port.unwrap_or(5060))).await.map_err(failed)?;
    found
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| failed(std::io::Error::new(std::io::ErrorKind::NotFound, "no IPv4 address")))
}

/// Starts a SIP endpoint of its own on `ip`, any free port, as `contact_user`, G.711
/// only, offering RFC 4733 telephone-event when `telephone_event`. New calls arrive on the
/// receiver; once it is dropped they get 503.
pub async fn local_endpoint(
    ip: IpAddr,
    contact_user: &str,
    max_calls: usize,
    telephone_event: bool,
) -> std::io::Result<(EndpointHandle, mpsc::Receiver<IncomingCall>, SocketAddr)> {
    let (inbound_tx, inbound_rx) = mpsc::channel(256);
    let transports =
        Transports::bind(SocketAddr::new(ip, 0), Limits::default(), inbound_tx).await?;
    let local = transports.local_addr();
    let timers = TimerConfig::default();
    let ua = Ua::new(UaConfig {
        contact_user: contact_user.into(),
        local_host: ip.to_string(),
        local_port: local.port(),
        tls_port: None,
        user_agent: format!("zendesk-ivr-{contact_user}/{}", env!("CARGO_PKG_VERSION")),
        server: format!("zendesk-ivr-{contact_user}/{}", env!("CARGO_PKG_VERSION")),
        codecs: vec![CodecName::Pcmu, CodecName::Pcma],
        offer_telephone_event: telephone_event,
        srtp: crate::config::SrtpPolicy::Off,
        session_expires: 1800,
        min_se: 90,
        send_ringing: false,
        max_calls,
        timers,
    });
    let (endpoint, incoming) =
        endpoint::spawn(transports, inbound_rx, TransactionLayer::new(timers), ua);
    Ok((endpoint, incoming, local))
}

/// One leg: the call placed, or the call to a REFER's target.
struct Leg {
    call: CallHandle,
    events: mpsc::Receiver<CallEvent>,
    answered: bool,
    over: bool,
}

impl Leg {
    async fn next(legs: &mut [Option<Leg>; 2]) -> (usize, Option<CallEvent>) {
        let [a, b] = legs;
        tokio::select! {
            event = Leg::recv(a.as_mut()) => (0, event),
            event = Leg::recv(b.as_mut()) => (1, event),
        }
    }

    async fn recv(leg: Option<&mut Leg>) -> Option<CallEvent> {
        match leg.filter(|l| !l.over) {
            Some(leg) => leg.events.recv().await,
            None => std::future::pending().await,
        }
    }
}

struct Session {
    options: CallOptions,
    endpoint: EndpointHandle,
    media: CallerMedia,
    script: Script,
    started: Instant,
    /// The call placed, then the call to the REFER's target.
    legs: [Option<Leg>; 2],
    answered_at: Option<Instant>,
    final_status: Option<u16>,
    codec: Option<String>,
    digits_sent: String,
    refer: Option<ReferReport>,
    end: Option<(Party, HangupCause)>,
    hung_up_by_script: bool,
}

/// Places the call described by `options` and reports on it once it is over.
pub async fn place_call(options: CallOptions) -> Result<CallReport, CallerError> {
    if let Some(bad) = options.digits.chars().find(|&c| event_code(c).is_none()) {
        return Err(CallerError::NotADigit(bad));
    }
    let target_addr = resolve(&options.target).await?;
    let ip = local_ip_towards(target_addr).map_err(CallerError::Bind)?;
    // Nobody takes incoming calls: with the receiver dropped, they get 503. A caller that
    // sends tones offers no telephone-event, like a phone without RFC 4733, so the far end
    // listens for tones.
    let telephone_event = options.dtmf_mode != DtmfMode::Inband;
    let (endpoint, _, _) =
        local_endpoint(ip, "caller", 4, telephone_event).await.map_err(CallerError::Bind)?;
    let media = CallerMedia::bind(ip).await.map_err(CallerError::Bind)?;
    let started = Instant::now();
    let script = Script::new(started, &options.digits, options.dtmf_at, options.duration);
    let transport = Transport::from(options.transport);
    let (call, events) = endpoint
        .dial_accepting_refer(&options.target, &options.from, transport, media.local_addr())
        .await?;
    info!(target = %options.target, from = %options.from, "calling");
    let mut session = Session {
        options,
        endpoint,
        media,
        script,
        started,
        legs: [Some(Leg { call, events, answered: false, over: false }), None],
        answered_at: None,
        final_status: None,
        codec: None,
        digits_sent: String::new(),
        refer: None,
        end: None,
        hung_up_by_script: false,
    };
    session.run().await;
    session.finish().await
}

impl Session {
    fn live(&self) -> bool {
        self.legs.iter().flatten().any(|l| !l.over)
    }

    async fn run(&mut self) {
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);
        while self.live() {
            let wake = self.script.poll_timeout();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (index, event) = Leg::next(&mut self.legs) => self.on_event(index, event).await,
                () = sleep => {
                    self.script.handle_timeout(Instant::now());
                    while let Some(action) = self.script.poll_action() {
                        self.on_action(action);
                    }
                }
                _ = &mut interrupt => {
                    info!("interrupted: hanging up");
                    self.end.get_or_insert((Party::Caller, HangupCause::Interrupted));
                    self.hang_up_all();
                }
            }
        }
        tokio::time::sleep(LINGER).await;
    }

    /// The leg digits and media go to: the REFER's target once it answered.
    fn active(&self) -> Option<CallHandle> {
        match &self.legs {
            [_, Some(leg)] if leg.answered && !leg.over => Some(leg.call),
            [Some(leg), _] if !leg.over => Some(leg.call),
            _ => None,
        }
    }

    fn on_action(&mut self, action: ScriptAction) {
        match action {
            ScriptAction::Press(digit) => {
                let Some(call) = self.active() else { return };
                info!(%digit, mode = ?self.options.dtmf_mode, "pressing");
                match self.options.dtmf_mode {
                    DtmfMode::Info => {
                        let body = format!("Signal={digit}\r\nDuration={DIGIT_MS}\r\n");
                        self.endpoint.send(Command::Info {
                            call,
                            content_type: "application/dtmf-relay".into(),
                            body: body.into_bytes(),
                        });
                    }
                    DtmfMode::Rfc4733 => self.media.press(digit, RtpDigit::Event),
                    DtmfMode::Inband => self.media.press(digit, RtpDigit::Tone),
                }
                self.digits_sent.push(digit);
            }
            ScriptAction::HangUp => {
                info!("the call lasted its time: hanging up");
                self.hung_up_by_script = true;
                self.hang_up_all();
            }
        }
    }

    fn hang_up_all(&mut self) {
        for leg in self.legs.iter().flatten().filter(|l| !l.over) {
            self.endpoint.send(Command::Hangup { call: leg.call });
        }
    }

    async fn on_event(&mut self, index: usize, event: Option<CallEvent>) {
        let Some(event) = event else {
            warn!("the SIP endpoint stopped");
            self.end.get_or_insert((Party::Neither, HangupCause::Error));
            for leg in self.legs.iter_mut().flatten() {
                leg.over = true;
            }
            return;
        };
        match event {
            CallEvent::Progress { status, .. } => info!(status, leg = index, "progress"),
            CallEvent::Established { media, .. } => {
                info!(leg = index, codec = ?media.codec.name, "answered");
                if let Some(leg) = self.legs[index].as_mut() {
                    leg.answered = true;
                }
                self.codec = Some(format!("{:?}", media.codec.name).to_ascii_uppercase());
                self.media.set_media(media);
                if index == 0 {
                    let now = Instant::now();
                    self.answered_at = Some(now);
                    self.final_status = Some(200);
                    self.script.answered(now);
                } else {
                    self.refer_result(200);
                }
            }
            CallEvent::MediaChanged { media, .. } => {
                if self.legs[index].as_ref().map(|l| l.call) == self.active() {
                    self.media.set_media(media);
                }
            }
            CallEvent::Referred { call, target } => self.on_refer(call, target).await,
            CallEvent::Terminated { reason, .. } => self.on_terminated(index, reason),
            other => tracing::debug!(event = ?other, "call event"),
        }
    }

    async fn on_refer(&mut self, call: CallHandle, target: String) {
        info!(%target, follow = self.options.follow_refer, "REFER from the far end");
        let follow = self.options.follow_refer && self.legs[1].is_none();
        self.refer = Some(ReferReport { target: target.clone(), followed: follow, status: None });
        if !follow {
            // Not followed: the transfer fails as far as the far end is concerned.
            self.endpoint.send(Command::NotifyRefer { call, status: 603 });
            return;
        }
        self.endpoint.send(Command::NotifyRefer { call, status: 100 });
        let transport = Transport::from(self.options.transport);
        let dialled = self
            .endpoint
            .dial_accepting_refer(&target, &self.options.from, transport, self.media.local_addr())
            .await;
        match dialled {
            Ok((call, events)) => {
                self.legs[1] = Some(Leg { call, events, answered: false, over: false });
            }
            Err(err) => {
                warn!(%err, "cannot call the REFER's target");
                self.refer_result(503);
            }
        }
    }

    /// The call to the REFER's target answered or failed: tell the transferor.
    fn refer_result(&mut self, status: u16) {
        if let Some(refer) = self.refer.as_mut() {
            refer.status = Some(status);
        }
        if let Some(first) = self.legs[0].as_ref().filter(|l| !l.over) {
            self.endpoint.send(Command::NotifyRefer { call: first.call, status });
        }
    }

    fn on_terminated(&mut self, index: usize, reason: EndReason) {
        info!(leg = index, ?reason, "call ended");
        let Some(leg) = self.legs[index].as_mut() else { return };
        leg.over = true;
        let answered = leg.answered;
        if index == 1 && !answered {
            let status = match reason {
                EndReason::Failed(status) => status,
                EndReason::Timeout => 408,
                _ => 487,
            };
            self.refer_result(status);
        }
        if index == 0 && !answered {
            self.final_status = match reason {
                EndReason::Failed(status) => Some(status),
                _ => None,
            };
        }
        // The call's end is the end of the last leg that was up.
        let by = match reason {
            EndReason::RemoteBye => (Party::FarEnd, HangupCause::Bye),
            EndReason::LocalBye | EndReason::Cancelled if self.hung_up_by_script => {
                (Party::Caller, HangupCause::DurationReached)
            }
            EndReason::LocalBye | EndReason::Cancelled => (Party::Caller, HangupCause::Bye),
            EndReason::Failed(_) | EndReason::Rejected => (Party::FarEnd, HangupCause::Refused),
            EndReason::Timeout => (Party::Neither, HangupCause::NoAnswer),
            EndReason::SessionExpired => (Party::Neither, HangupCause::SessionExpired),
            EndReason::AckTimeout | EndReason::Error => (Party::Neither, HangupCause::Error),
        };
        if !self.live() && self.end.is_none() {
            self.end = Some(by);
        }
    }

    async fn finish(self) -> Result<CallReport, CallerError> {
        let Session {
            options,
            media,
            started,
            answered_at,
            final_status,
            codec,
            digits_sent,
            refer,
            end,
            ..
        } = self;
        let heard: Heard = media.finish().await;
        let recording = match &options.record {
            Some(path) => {
                let (path, audio) = (path.clone(), heard.audio);
                let written = tokio::task::spawn_blocking(move || {
                    write_wav(&path, &audio)
                        .map(|()| path.clone())
                        .map_err(|source| CallerError::Recording { path, source })
                })
                .await
                .map_err(|err| CallerError::Bind(std::io::Error::other(err)))??;
                Some(written)
            }
            None => None,
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let first_rtp = match (answered_at, heard.first_packet_at) {
            (Some(answer), Some(first)) => Some(ms(first.saturating_duration_since(answer))),
            _ => None,
        };
        let answered = answered_at.is_some();
        let refer_ok = refer.as_ref().is_none_or(|r| !r.followed || r.status == Some(200));
        let (hung_up_by, hangup_cause) = end.unwrap_or((Party::Neither, HangupCause::Error));
        Ok(CallReport {
            target: options.target,
            from: options.from,
            answered,
            final_status,
            time_to_answer_ms: answered_at.map(|a| ms(a - started)),
            answer_to_first_rtp_ms: first_rtp,
            packets_received: heard.packets,
            pacing: heard.pacing,
            codec,
            dtmf_mode: options.dtmf_mode,
            digits_sent,
            digits_as_tones: heard.tone_fallbacks,
            refer,
            hung_up_by,
            hangup_cause,
            duration_ms: ms(started.elapsed()),
            recording,
            ok: answered && refer_ok,
        })
    }
}

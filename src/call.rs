//! The per-call driver (runtime layer): one task per call, in a tracing span that carries
//! the Call-ID. It reads the caller ID, takes RTP ports, answers, and follows the call's
//! events until it ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::Config;
use crate::media::call_media::{CallMedia, CallMediaEvent};
use crate::media::engine::MediaEngine;
use crate::media::rtp_ports::RtpPorts;
use crate::sip::ani::{self, Ani, CallerId};
use crate::sip::dialog::CallEvent;
use crate::sip::endpoint::{Command, EndpointHandle, IncomingCall};

/// What every call shares.
#[derive(Clone)]
pub struct CallContext {
    pub config: Arc<Config>,
    pub endpoint: EndpointHandle,
    pub rtp_ports: RtpPorts,
    pub media: MediaEngine,
}

/// How a call went, for logs and (later) the post-call comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    pub call_id: String,
    pub ani: Ani,
    pub answered: bool,
    pub end: String,
    /// DTMF digits received, in order (RFC 4733, SIP INFO or in-band).
    pub digits: String,
}

/// Runs one call to its end.
pub async fn run(ctx: CallContext, incoming: IncomingCall) -> CallSummary {
    let span = info_span!("call", call_id = %incoming.call_id);
    drive(ctx, incoming).instrument(span).await
}

async fn drive(ctx: CallContext, mut incoming: IncomingCall) -> CallSummary {
    let sip = &ctx.config.sip;
    let source: IpAddr = incoming.source.addr.ip();
    let ani = ani::caller_id(&incoming.invite, source, &sip.trusted_sources, &sip.default_region);
    match &ani.caller {
        CallerId::Number(n) => info!(caller = %n.e164, source = ?ani.source, "incoming call"),
        CallerId::Anonymous => info!("incoming call from a withheld number"),
        CallerId::NotANumber(user) => {
            info!(caller = %user, "incoming call from a non-numeric caller")
        }
    }
    let mut summary = CallSummary {
        call_id: incoming.call_id.clone(),
        ani,
        answered: false,
        end: String::new(),
        digits: String::new(),
    };
    let call = incoming.call;
    let rtp = match ctx.rtp_ports.allocate().await {
        Ok(sockets) => sockets,
        Err(err) => {
            warn!(%err, "no RTP port; rejecting the call");
            ctx.endpoint.send(Command::Reject { call, status: 503 });
            summary.end = "rejected: no RTP port".into();
            return summary;
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
                        return summary;
                    }
                    Some(other) => debug!(event = ?other, "call event while ringing"),
                    None => return summary,
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
    loop {
        let over_time = async {
            match limit {
                Some(at) => tokio::time::sleep_until(at).await,
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
            }
            CallEvent::MediaChanged { media: negotiated, .. } => {
                info!(direction = ?negotiated.direction, remote = ?negotiated.remote_rtp, "media changed");
                media.changed(&negotiated);
            }
            CallEvent::Info { content_type, body, .. } => media.sip_info(&content_type, &body),
            CallEvent::Terminated { reason, .. } => {
                info!(?reason, "call ended");
                summary.end = format!("{reason:?}");
                break;
            }
            other => debug!(event = ?other, "call event"),
        }
    }
    summary.digits = media.digits().to_string();
    drop(media);
    summary
}

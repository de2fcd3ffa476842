//! Bridge mode (runtime layer): the caller hears hold music while we call the agent on a
//! second RTP port pair; when the agent answers, the caller's playback stops and
//! [`bridge_relay::relay`] takes over both legs' sockets, continuing the caller leg's
//! outgoing stream (same SSRC, next sequence number and timestamp). When either side
//! hangs up, the other is hung up and the relay stops; the ports go back to the pool when
//! this returns. Busy, no answer or a failed call leaves the caller with us, on hold
//! music. While bridged, either leg's re-INVITE (hold, a new address) is applied to the
//! relay, and a digit sent by SIP INFO is sent on to the other leg by SIP INFO.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::call::CallContext;
use crate::media::bridge::{Leg, LegSetup, StreamState};
use crate::media::bridge_relay::{self, RelayControl, RelayLeg};
use crate::media::call_media::{CallMedia, CallMediaEvent};
use crate::media::dtmf;
use crate::sdp::Negotiated;
use crate::sip::dialog::{CallEvent, CallHandle, EndReason};
use crate::sip::endpoint::Command;
use crate::sip::message::Transport;
use crate::transfer::{CallControl, TransferError, TransferResult};

/// How long the agent may take to answer before we cancel and keep the caller.
pub const AGENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The caller's side of a call being bridged.
pub struct CallerLeg<'a> {
    pub call: CallHandle,
    pub events: &'a mut mpsc::UnboundedReceiver<CallEvent>,
    pub control: &'a mut mpsc::Receiver<CallControl>,
    pub media: &'a mut CallMedia,
}

/// How a bridge attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeEnd {
    pub result: TransferResult,
    /// The caller's call ended (its reason); `None` when the caller is still with us
    /// (back on hold music) or is being hung up (its end event is still to come).
    pub caller_ended: Option<EndReason>,
}

impl BridgeEnd {
    fn kept(result: TransferResult) -> BridgeEnd {
        BridgeEnd { result, caller_ended: None }
    }
}

/// Calls `target` from `from_user` and bridges the caller to it (see the module docs).
pub async fn bridge(
    ctx: &CallContext,
    caller: CallerLeg<'_>,
    target: &str,
    from_user: &str,
) -> BridgeEnd {
    let CallerLeg { call, events, control, media } = caller;
    media.play_hold_music();
    let agent_rtp = match ctx.rtp_ports.allocate().await {
        Ok(sockets) => sockets,
        Err(err) => {
            warn!(%err, "no RTP port for the agent leg");
            return BridgeEnd::kept(TransferResult::Failed(format!("no RTP port: {err}")));
        }
    };
    let (agent, mut agent_events) =
        match ctx.endpoint.dial(target, from_user, Transport::Udp, agent_rtp.rtp_addr()).await {
            Ok(dialed) => dialed,
            Err(err) => {
                warn!(%err, target, "cannot call the agent");
                return BridgeEnd::kept(TransferResult::Failed(err.to_string()));
            }
        };
    info!(target, "calling the agent; the caller hears hold music");

    // Ringing: the caller stays on hold music.
    let give_up = tokio::time::sleep(AGENT_ANSWER_TIMEOUT);
    tokio::pin!(give_up);
    let agent_media = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(CallEvent::Terminated { reason, .. }) => {
                    info!(?reason, "caller hung up while the agent rang; cancelling");
                    ctx.endpoint.send(Command::Hangup { call: agent });
                    return BridgeEnd { result: TransferResult::CallerHungUp, caller_ended: Some(reason) };
                }
                Some(CallEvent::MediaChanged { media: m, .. }) => media.changed(&m),
                Some(other) => debug!(event = ?other, "caller event while the agent rings"),
                None => {
                    ctx.endpoint.send(Command::Hangup { call: agent });
                    return BridgeEnd { result: TransferResult::CallerHungUp, caller_ended: Some(EndReason::Error) };
                }
            },
            event = agent_events.recv() => match event {
                Some(CallEvent::Established { media: m, .. }) => break m,
                Some(CallEvent::Progress { status, .. }) => info!(status, "agent progress"),
                Some(CallEvent::Terminated { reason, .. }) => {
                    info!(?reason, "the agent call failed; the caller stays on hold music");
                    let result = match reason {
                        EndReason::Failed(status) => TransferResult::Refused(status),
                        EndReason::Timeout => TransferResult::TimedOut,
                        other => TransferResult::Failed(format!("{other:?}")),
                    };
                    return BridgeEnd::kept(result);
                }
                Some(other) => debug!(event = ?other, "agent event while ringing"),
                None => return BridgeEnd::kept(TransferResult::Failed("the endpoint stopped".into())),
            },
            Some(request) = control.recv() => refuse(request),
            media_event = media.next_event() => match media_event {
                CallMediaEvent::Digit(d) => debug!(digit = %d.digit, "digit while the agent rings"),
                CallMediaEvent::RtpTimeout => {
                    info!("no RTP from the caller; hanging up both");
                    ctx.endpoint.send(Command::Hangup { call: agent });
                    ctx.endpoint.send(Command::Hangup { call });
                    return BridgeEnd::kept(TransferResult::Failed("no RTP from the caller".into()));
                }
            },
            () = &mut give_up => {
                info!("the agent did not answer in time; cancelling");
                ctx.endpoint.send(Command::Hangup { call: agent });
                return BridgeEnd::kept(TransferResult::TimedOut);
            }
        }
    };
    info!(codec = ?agent_media.codec.name, remote = ?agent_media.remote_rtp, "agent answered; bridging");

    let Some((caller_media, caller_negotiated)) = media.detach().await else {
        ctx.endpoint.send(Command::Hangup { call: agent });
        return BridgeEnd::kept(TransferResult::Failed("the caller has no media".into()));
    };
    let legs = share_socket(&caller_media.sockets.rtp)
        .and_then(|a| Ok((a, share_socket(&agent_rtp.rtp)?)));
    let (caller_socket, agent_socket) = match legs {
        Ok(sockets) => sockets,
        Err(err) => {
            warn!(%err, "cannot share the RTP sockets with the relay; hanging up");
            hang_up_both(ctx, call, agent);
            return BridgeEnd::kept(TransferResult::Failed(format!("RTP sockets: {err}")));
        }
    };
    let a = RelayLeg {
        socket: caller_socket,
        setup: LegSetup { negotiated: caller_negotiated, outgoing: caller_media.stream },
    };
    let agent_stream =
        StreamState { ssrc: rand::random(), next_seq: rand::random(), next_ts: rand::random() };
    let b = RelayLeg {
        socket: agent_socket,
        setup: LegSetup { negotiated: agent_media, outgoing: agent_stream },
    };
    let (relay_control, control_rx) = mpsc::unbounded_channel();
    let mut relay = tokio::spawn(bridge_relay::relay(a, b, control_rx));
    let update = |leg: Leg, media: Negotiated| {
        let _ = relay_control.send(RelayControl::Update(leg, media));
    };

    // Bridged: the transfer is done; whoever hangs up first ends both.
    let caller_ended = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(CallEvent::Terminated { reason, .. }) => {
                    info!(?reason, "caller hung up; hanging up the agent");
                    ctx.endpoint.send(Command::Hangup { call: agent });
                    break Some(reason);
                }
                Some(CallEvent::MediaChanged { media: m, .. }) => update(Leg::A, m),
                Some(CallEvent::Info { content_type, body, .. }) => {
                    pass_info_digit(ctx, agent, content_type, body);
                }
                Some(other) => debug!(event = ?other, "caller event during the bridge"),
                None => {
                    ctx.endpoint.send(Command::Hangup { call: agent });
                    break Some(EndReason::Error);
                }
            },
            event = agent_events.recv() => match event {
                Some(CallEvent::Terminated { reason, .. }) => {
                    info!(?reason, "agent hung up; hanging up the caller");
                    ctx.endpoint.send(Command::Hangup { call });
                    break None;
                }
                None => {
                    ctx.endpoint.send(Command::Hangup { call });
                    break None;
                }
                Some(CallEvent::MediaChanged { media: m, .. }) => update(Leg::B, m),
                Some(CallEvent::Info { content_type, body, .. }) => {
                    pass_info_digit(ctx, call, content_type, body);
                }
                Some(other) => debug!(event = ?other, "agent event during the bridge"),
            },
            Some(request) = control.recv() => refuse(request),
            finished = &mut relay => {
                warn!(?finished, "the relay stopped on its own; hanging up both");
                hang_up_both(ctx, call, agent);
                return BridgeEnd::kept(TransferResult::Failed("the relay could not run".into()));
            }
        }
    };
    let _ = relay_control.send(RelayControl::Stop);
    match relay.await {
        Ok(Ok(outcome)) => info!(stats = ?outcome.stats, "bridge ended"),
        Ok(Err(err)) => warn!(%err, "the bridge could not relay"),
        Err(err) => warn!(%err, "the relay task failed"),
    }
    BridgeEnd { result: TransferResult::Transferred, caller_ended }
}

/// A digit that came by SIP INFO on one leg goes on to the other leg the same way (the
/// relay carries RFC 4733 and in-band digits itself). Other INFO bodies stay here.
fn pass_info_digit(ctx: &CallContext, to: CallHandle, content_type: String, body: Vec<u8>) {
    match dtmf::parse_info(&content_type, &body) {
        Some(digit) => {
            debug!(digit = %digit.digit, "passing a SIP INFO digit across the bridge");
            ctx.endpoint.send(Command::Info { call: to, content_type, body });
        }
        None => debug!(content_type, "SIP INFO without a digit not passed on"),
    }
}

/// Answers a request that arrives during a transfer.
fn refuse(request: CallControl) {
    let CallControl::Transfer { reply, .. } = request;
    let _ = reply.send(Err(TransferError::InProgress));
}

fn hang_up_both(ctx: &CallContext, caller: CallHandle, agent: CallHandle) {
    ctx.endpoint.send(Command::Hangup { call: agent });
    ctx.endpoint.send(Command::Hangup { call: caller });
}

/// A second handle on a call's RTP socket (the same socket, a duplicated descriptor), for
/// the relay task; the port stays reserved by the original.
fn share_socket(socket: &UdpSocket) -> io::Result<Arc<UdpSocket>> {
    let std_socket = std::net::UdpSocket::from(socket.as_fd().try_clone_to_owned()?);
    std_socket.set_nonblocking(true)?;
    Ok(Arc::new(UdpSocket::from_std(std_socket)?))
}

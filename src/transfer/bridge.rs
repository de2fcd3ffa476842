//! Bridge mode's agent leg (runtime layer): a state of the call's driver, not a loop of
//! its own. [`AgentLeg::dial`] calls the target on a second RTP port pair while the
//! caller hears hold music; the driver polls [`AgentLeg::next_event`] beside the caller's
//! events. When the agent answers, the driver detaches the caller's media and
//! [`AgentLeg::bridge`] hands both legs' sockets to [`bridge_relay::relay`], which
//! continues the caller leg's outgoing stream (same SSRC, next sequence number and
//! timestamp). The ports go back to the pool when the leg is dropped.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::ivr::outcome::TransferFailure;
use crate::media::bridge::{BridgeError, Leg, LegSetup, StreamState};
use crate::media::bridge_relay::{self, RelayControl, RelayLeg, RelayOutcome, RelaySettings};
use crate::media::dtmf;
use crate::media::rtp_ports::{RtpPorts, RtpSockets};
use crate::media::session::{DetachedMedia, SentCounts};
use crate::sdp::Negotiated;
use crate::sip::dialog::{CallEvent, CallHandle, EndReason};
use crate::sip::endpoint::{Command, EndpointHandle};
use crate::sip::message::Transport;

/// Why a call on SRTP is not transferred by bridge.
pub fn srtp_refused() -> TransferFailure {
    TransferFailure::Error { message: "bridge transfer is not supported for SRTP calls".into() }
}

/// The relay forwards plain RTP: it would have to decrypt and re-encrypt every packet
/// between two keys. The call's actions refuse an SRTP call before the agent is dialled;
/// this check keeps the relay from ever sending SRTP media on in clear, or the reverse.
fn refuse_srtp(caller: &Negotiated, agent: &Negotiated) -> Result<(), TransferFailure> {
    if caller.srtp.is_some() || agent.srtp.is_some() {
        warn!("SRTP media cannot be bridged");
        return Err(srtp_refused());
    }
    Ok(())
}

/// What the agent leg reports to the driver.
#[derive(Debug)]
pub enum AgentEvent {
    /// A provisional response (180, 183).
    Progress(u16),
    /// The agent answered with this media: bridge now.
    Answered(Negotiated),
    /// The agent could not be reached (the leg is over).
    Failed(TransferFailure),
    /// The bridged agent hung up (the leg is over).
    Ended,
    /// While bridged, one leg (not on hold) sent no RTP for the RTP timeout.
    MediaTimeout,
    /// The agent's re-INVITE changed its media (already applied to the relay).
    MediaChanged,
    /// A digit by SIP INFO from the agent, for the caller.
    Info { content_type: String, body: Vec<u8> },
}

struct Relay {
    task: JoinHandle<Result<RelayOutcome, BridgeError>>,
    control: mpsc::UnboundedSender<RelayControl>,
}

/// One call to an agent.
pub struct AgentLeg {
    endpoint: EndpointHandle,
    call: CallHandle,
    events: crate::sip::call_events::CallEvents,
    rtp: RtpSockets,
    /// While ringing: when to give up.
    ring_deadline: Option<Instant>,
    relay: Option<Relay>,
    /// The caller's sockets while the relay uses them (the ports stay reserved).
    caller_sockets: Option<Arc<RtpSockets>>,
    over: bool,
}

impl AgentLeg {
    /// Calls `target` from `from_user` with `headers` on the INVITE.
    pub async fn dial(
        endpoint: &EndpointHandle,
        ports: &RtpPorts,
        target: &str,
        from_user: &str,
        headers: Vec<(String, String)>,
        ring_timeout: Duration,
    ) -> Result<AgentLeg, TransferFailure> {
        let rtp = ports.allocate().await.map_err(|err| TransferFailure::Error {
            message: format!("no RTP port for the agent leg: {err}"),
        })?;
        let (call, events) = endpoint
            .dial_with_headers(target, from_user, Transport::Udp, rtp.rtp_addr(), headers)
            .await
            .map_err(|err| TransferFailure::Error { message: err.to_string() })?;
        info!(target, "calling the agent; the caller hears hold music");
        Ok(AgentLeg {
            endpoint: endpoint.clone(),
            call,
            events,
            rtp,
            ring_deadline: Some(Instant::now() + ring_timeout),
            relay: None,
            caller_sockets: None,
            over: false,
        })
    }

    /// Whether the agent is bridged to the caller.
    pub fn is_bridged(&self) -> bool {
        self.relay.is_some()
    }

    /// The next thing that happens to the agent leg (pending once it is over).
    pub async fn next_event(&mut self) -> AgentEvent {
        loop {
            if self.over {
                return std::future::pending().await;
            }
            let ring = async {
                match self.ring_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let relay_done = async {
                match self.relay.as_mut() {
                    Some(relay) => (&mut relay.task).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = self.events.recv() => {
                    if let Some(event) = self.on_event(event) {
                        return event;
                    }
                }
                () = ring => {
                    info!("the agent did not answer in time; cancelling");
                    self.hang_up();
                    return AgentEvent::Failed(TransferFailure::TimedOut);
                }
                finished = relay_done => {
                    self.relay = None;
                    if let Ok(Ok(outcome)) = &finished
                        && let Some(leg) = outcome.timed_out
                    {
                        info!(?leg, "no RTP on a bridged leg; hanging up");
                        self.hang_up();
                        return AgentEvent::MediaTimeout;
                    }
                    warn!(?finished, "the relay stopped on its own; hanging up the agent");
                    self.hang_up();
                    return AgentEvent::Ended;
                }
            }
        }
    }

    fn on_event(&mut self, event: Option<CallEvent>) -> Option<AgentEvent> {
        let Some(event) = event else {
            self.over = true;
            return Some(AgentEvent::Failed(TransferFailure::Error {
                message: "the endpoint stopped".into(),
            }));
        };
        match event {
            CallEvent::Progress { status, .. } => Some(AgentEvent::Progress(status)),
            CallEvent::Established { media, .. } if self.ring_deadline.is_some() => {
                self.ring_deadline = None;
                Some(AgentEvent::Answered(media))
            }
            CallEvent::MediaChanged { media, .. } => {
                self.update(Leg::B, media);
                Some(AgentEvent::MediaChanged)
            }
            CallEvent::Info { content_type, body, .. } => {
                Some(AgentEvent::Info { content_type, body })
            }
            CallEvent::Terminated { reason, .. } => {
                self.over = true;
                if self.ring_deadline.take().is_some() {
                    info!(?reason, "the agent call failed");
                    return Some(AgentEvent::Failed(match reason {
                        EndReason::Failed(status) => TransferFailure::Refused { status },
                        EndReason::Timeout => TransferFailure::TimedOut,
                        other => TransferFailure::Error { message: format!("{other:?}") },
                    }));
                }
                info!(?reason, "the agent hung up");
                self.stop_relay();
                Some(AgentEvent::Ended)
            }
            other => {
                debug!(event = ?other, "agent event");
                None
            }
        }
    }

    /// Relays between the caller (their detached media) and the answered agent. Media on
    /// SRTP on either leg is refused ([`refuse_srtp`]).
    pub fn bridge(
        &mut self,
        caller: DetachedMedia,
        caller_media: Negotiated,
        agent_media: Negotiated,
        settings: RelaySettings,
    ) -> Result<(), TransferFailure> {
        refuse_srtp(&caller_media, &agent_media)?;
        let shared = |caller: &RtpSockets, agent: &RtpSockets| -> io::Result<_> {
            Ok((
                (share_socket(&caller.rtp)?, share_socket(&caller.rtcp)?),
                (share_socket(&agent.rtp)?, share_socket(&agent.rtcp)?),
            ))
        };
        let (caller_sockets, agent_sockets) = shared(&caller.sockets, &self.rtp)
            .map_err(|err| TransferFailure::Error { message: format!("RTP sockets: {err}") })?;
        let a = RelayLeg {
            socket: caller_sockets.0,
            rtcp: Some(caller_sockets.1),
            setup: LegSetup { negotiated: caller_media, outgoing: caller.stream },
            sent_before: caller.sent,
        };
        let outgoing =
            StreamState { ssrc: rand::random(), next_seq: rand::random(), next_ts: rand::random() };
        let agent_codec = agent_media.codec.name;
        let b = RelayLeg {
            socket: agent_sockets.0,
            rtcp: Some(agent_sockets.1),
            setup: LegSetup { negotiated: agent_media, outgoing },
            sent_before: SentCounts::default(),
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(bridge_relay::relay(a, b, control_rx, settings));
        self.relay = Some(Relay { task, control });
        // The caller's sockets must live as long as the relay uses them.
        self.caller_sockets = Some(caller.sockets);
        info!(codec = ?agent_codec, "agent answered; bridged");
        Ok(())
    }

    /// The caller's media changed (hold, a new address).
    pub fn caller_media_changed(&self, media: Negotiated) {
        self.update(Leg::A, media);
    }

    fn update(&self, leg: Leg, media: Negotiated) {
        if let Some(relay) = &self.relay {
            let _ = relay.control.send(RelayControl::Update(leg, media));
        }
    }

    /// A SIP INFO digit from one leg goes on to `to` the same way (the relay carries
    /// RFC 4733 and in-band digits itself). Other INFO bodies stay here.
    pub fn pass_info(&self, to: CallHandle, content_type: String, body: Vec<u8>) {
        match dtmf::parse_info(&content_type, &body) {
            Some(digit) => {
                debug!(digit = %digit.digit, "passing a SIP INFO digit across the bridge");
                self.endpoint.send(Command::Info { call: to, content_type, body });
            }
            None => debug!(content_type, "SIP INFO without a digit not passed on"),
        }
    }

    /// The agent's call handle (to pass the caller's INFO digits to it).
    pub fn call(&self) -> CallHandle {
        self.call
    }

    /// Hangs the agent up (CANCEL while ringing, BYE once answered).
    pub fn hang_up(&mut self) {
        if !self.over {
            self.endpoint.send(Command::Hangup { call: self.call });
        }
        self.over = true;
        self.ring_deadline = None;
        self.stop_relay();
    }

    fn stop_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            let _ = relay.control.send(RelayControl::Stop);
            tokio::spawn(async move {
                match relay.task.await {
                    Ok(Ok(outcome)) => info!(stats = ?outcome.stats, "bridge ended"),
                    Ok(Err(err)) => warn!(%err, "the bridge could not relay"),
                    Err(err) => warn!(%err, "the relay task failed"),
                }
            });
        }
    }
}

impl Drop for AgentLeg {
    fn drop(&mut self) {
        self.hang_up();
    }
}

/// A second handle on a call's RTP socket (the same socket, a duplicated descriptor), for
/// the relay task; the port stays reserved by the original.
fn share_socket(socket: &std::net::UdpSocket) -> io::Result<Arc<UdpSocket>> {
    let std_socket = socket.try_clone()?;
    std_socket.set_nonblocking(true)?;
    Ok(Arc::new(UdpSocket::from_std(std_socket)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodecName;
    use crate::sdp::{Codec, Direction};
    use crate::srtp::{MASTER_LEN, MasterKey, SrtpKeys, Suite};

    fn media(srtp: bool) -> Negotiated {
        Negotiated {
            codec: Codec { name: CodecName::Pcmu, payload_type: 0, clock_rate: 8000, channels: 1 },
            telephone_event: Some(101),
            remote_rtp: Some("192.0.2.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            ptime_ms: 20,
            srtp: srtp.then(|| SrtpKeys {
                tag: 1,
                suite: Suite::AesCm128HmacSha1_80,
                send: MasterKey::new([1; MASTER_LEN]),
                receive: MasterKey::new([2; MASTER_LEN]),
            }),
        }
    }

    #[test]
    fn srtp_media_on_either_leg_is_not_bridged() {
        assert!(refuse_srtp(&media(false), &media(false)).is_ok());
        for (caller, agent) in [(true, false), (false, true), (true, true)] {
            let refused = refuse_srtp(&media(caller), &media(agent));
            assert!(
                matches!(&refused, Err(TransferFailure::Error { message }) if message.contains("SRTP")),
                "caller {caller}, agent {agent}: {refused:?}"
            );
        }
    }
}

//! The bridge's runtime: relays RTP between two legs' UDP sockets through a
//! [`Bridge`](crate::media::bridge::Bridge) until told to stop.
//!
//! One task per bridged call. It waits on both sockets and its control channel, feeds
//! every datagram to the sans-IO bridge and sends what comes back on the far leg's socket.
//! Sending is immediate: a bridged packet keeps the pacing of the phone that sent it.
//! A re-INVITE or UPDATE on either leg (hold, a new address) reaches it as
//! [`RelayControl::Update`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use crate::media::bridge::{
    Bridge, BridgeError, BridgeStats, Leg, LegSetup, MAX_RTP_PACKET, StreamState, Transmit,
};
use crate::media::bridge_rtcp::LegRtcp;
use crate::media::liveness::{RtpLiveness, on_hold};
use crate::media::rtcp;
use crate::media::session::SentCounts;
use crate::sdp::Negotiated;

/// What the owner of a running relay can tell it.
#[derive(Debug, Clone)]
pub enum RelayControl {
    /// A leg's media changed mid-call (direction, address); its codec stays.
    Update(Leg, Negotiated),
    /// Stop relaying (as does dropping every sender).
    Stop,
}

/// One leg for the relay: its RTP socket (and RTCP socket, for reports), and what was
/// negotiated on it.
#[derive(Debug, Clone)]
pub struct RelayLeg {
    pub socket: Arc<UdpSocket>,
    pub rtcp: Option<Arc<UdpSocket>>,
    pub setup: LegSetup,
    /// What our stream on this leg sent before the relay took it over.
    pub sent_before: SentCounts,
}

/// How the relay watches and reports its legs.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// A leg not on hold that sends nothing this long ends the relay (zero: never).
    pub rtp_timeout: Duration,
    /// Our RTCP CNAME.
    pub cname: String,
}

/// What a finished relay leaves behind: counters, and each leg's outgoing stream and
/// latched remote, to carry on (prompts, hold music) after the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOutcome {
    pub stats: BridgeStats,
    pub a: StreamState,
    pub b: StreamState,
    pub remote_a: Option<SocketAddr>,
    pub remote_b: Option<SocketAddr>,
    /// The leg that went silent (not on hold) for the RTP timeout, if that ended it.
    pub timed_out: Option<Leg>,
}

/// Relays between `a` and `b` until told to stop. Fails only if the bridge cannot be
/// built (codecs); socket errors are logged and the relay carries on.
pub async fn relay(
    a: RelayLeg,
    b: RelayLeg,
    mut control: mpsc::UnboundedReceiver<RelayControl>,
    settings: RelaySettings,
) -> Result<RelayOutcome, BridgeError> {
    let start = Instant::now();
    let timeout = settings.rtp_timeout;
    let mut liveness = [
        RtpLiveness::new(start, timeout, on_hold(&a.setup.negotiated)),
        RtpLiveness::new(start, timeout, on_hold(&b.setup.negotiated)),
    ];
    let rtcp_leg = |leg: &RelayLeg| {
        let (ssrc, rate) = (leg.setup.outgoing.ssrc, leg.setup.negotiated.codec.clock_rate);
        LegRtcp::new(start, ssrc, &settings.cname, rate, rand::random())
            .sent_before(leg.sent_before)
    };
    let mut rtcp = [rtcp_leg(&a), rtcp_leg(&b)];
    let rtcp_sockets = [a.rtcp, b.rtcp];
    // The audio payload type of each leg: only audio feeds the reception statistics.
    let mut audio_pt =
        [a.setup.negotiated.codec.payload_type, b.setup.negotiated.codec.payload_type];
    let mut timed_out = None;
    let mut bridge = Bridge::new(a.setup, b.setup)?;
    let sockets = [a.socket, b.socket];
    // One byte over the limit, so oversized datagrams are seen as such and dropped.
    let mut buf_a = vec![0u8; MAX_RTP_PACKET + 1];
    let mut buf_b = vec![0u8; MAX_RTP_PACKET + 1];
    let mut rtcp_buf_a = vec![0u8; rtcp::MAX_RTCP_BYTES];
    let mut rtcp_buf_b = vec![0u8; rtcp::MAX_RTCP_BYTES];
    loop {
        let silent_until = liveness.iter().filter_map(RtpLiveness::poll_timeout).min();
        let silence = sleep_until(silent_until);
        let report_at = [0, 1]
            .into_iter()
            .filter(|i| rtcp_sockets[*i].is_some())
            .map(|i| rtcp[i].poll_timeout())
            .min();
        let report_due = sleep_until(report_at);
        let (leg, received) = tokio::select! {
            biased;
            order = control.recv() => match order {
                Some(RelayControl::Update(leg, negotiated)) => {
                    debug!(?leg, ?negotiated, "bridge leg updated");
                    liveness[index(leg)].set_on_hold(Instant::now(), on_hold(&negotiated));
                    audio_pt[index(leg)] = negotiated.codec.payload_type;
                    bridge.update_leg(leg, negotiated);
                    continue;
                }
                Some(RelayControl::Stop) | None => break,
            },
            r = sockets[0].recv_from(&mut buf_a) => (Leg::A, r),
            r = sockets[1].recv_from(&mut buf_b) => (Leg::B, r),
            () = silence => {
                let now = Instant::now();
                timed_out = [Leg::A, Leg::B].into_iter().find(|l| liveness[index(*l)].expired(now));
                if timed_out.is_some() {
                    break;
                }
                continue;
            }
            () = report_due => {
                let now = Instant::now();
                for leg in [Leg::A, Leg::B] {
                    let report = rtcp[index(leg)].poll_report(now, bridge.remote(leg), rand::random());
                    send_rtcp(&rtcp_sockets[index(leg)], report).await;
                }
                continue;
            }
            r = recv_opt(&rtcp_sockets[0], &mut rtcp_buf_a) => {
                match r {
                    Ok((n, source)) => {
                        let packet = rtcp_buf_a.get(..n).unwrap_or_default();
                        rtcp[0].received_rtcp(Instant::now(), source, packet);
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
                continue;
            }
            r = recv_opt(&rtcp_sockets[1], &mut rtcp_buf_b) => {
                match r {
                    Ok((n, source)) => {
                        let packet = rtcp_buf_b.get(..n).unwrap_or_default();
                        rtcp[1].received_rtcp(Instant::now(), source, packet);
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
                continue;
            }
        };
        let (n, source) = match received {
            Ok(received) => received,
            Err(err) => {
                // ICMP errors surface here on some systems; the next datagram may be fine.
                debug!(?leg, %err, "RTP receive failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let buf = if leg == Leg::A { &buf_a } else { &buf_b };
        let Some(bytes) = buf.get(..n) else { continue };
        let now = Instant::now();
        let dropped_before = bridge.stats().received_on(leg).dropped_packets;
        let out = bridge.handle_packet(now, leg, source, bytes);
        // Only a packet the bridge took counts as life on the leg (junk, or a stray stream
        // on a reused port, does not), and only its audio as reception statistics.
        if bridge.stats().received_on(leg).dropped_packets == dropped_before {
            liveness[index(leg)].packet(now);
            if bytes.get(1).map(|b| b & 0x7F) == Some(audio_pt[index(leg)]) {
                rtcp[index(leg)].received_rtp(now, bytes);
            }
        }
        for t in &out {
            rtcp[index(t.leg)].sent_rtp(&t.packet);
        }
        send_all(&sockets, out).await;
    }
    // Our streams on both legs end here.
    for leg in [Leg::A, Leg::B] {
        let bye = rtcp[index(leg)].bye(Instant::now(), bridge.remote(leg));
        send_rtcp(&rtcp_sockets[index(leg)], bye).await;
    }
    Ok(RelayOutcome {
        stats: bridge.stats(),
        a: bridge.stream_state(Leg::A),
        b: bridge.stream_state(Leg::B),
        remote_a: bridge.remote(Leg::A),
        remote_b: bridge.remote(Leg::B),
        timed_out,
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Receives on `socket`, or waits forever without one.
async fn recv_opt(
    socket: &Option<Arc<UdpSocket>>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn send_rtcp(socket: &Option<Arc<UdpSocket>>, report: Option<(Vec<u8>, SocketAddr)>) {
    if let (Some(socket), Some((packet, to))) = (socket, report)
        && let Err(err) = socket.send_to(&packet, to).await
    {
        debug!(%to, %err, "RTCP send failed");
    }
}

fn index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

async fn send_all(sockets: &[Arc<UdpSocket>; 2], out: Vec<Transmit>) {
    for t in out {
        let socket = match t.leg {
            Leg::A => &sockets[0],
            Leg::B => &sockets[1],
        };
        if let Err(err) = socket.send_to(&t.packet, t.dest).await {
            debug!(leg = ?t.leg, dest = %t.dest, %err, "RTP send failed");
        }
    }
}

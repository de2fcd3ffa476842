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
use crate::media::liveness::{RtpLiveness, on_hold};
use crate::sdp::Negotiated;

/// What the owner of a running relay can tell it.
#[derive(Debug, Clone, Copy)]
pub enum RelayControl {
    /// A leg's media changed mid-call (direction, address); its codec stays.
    Update(Leg, Negotiated),
    /// Stop relaying (as does dropping every sender).
    Stop,
}

/// One leg for the relay: its RTP socket and what was negotiated on it.
#[derive(Debug, Clone)]
pub struct RelayLeg {
    pub socket: Arc<UdpSocket>,
    pub setup: LegSetup,
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
    rtp_timeout: Duration,
) -> Result<RelayOutcome, BridgeError> {
    let start = Instant::now();
    let mut liveness = [
        RtpLiveness::new(start, rtp_timeout, on_hold(&a.setup.negotiated)),
        RtpLiveness::new(start, rtp_timeout, on_hold(&b.setup.negotiated)),
    ];
    let mut timed_out = None;
    let mut bridge = Bridge::new(a.setup, b.setup)?;
    let sockets = [a.socket, b.socket];
    // One byte over the limit, so oversized datagrams are seen as such and dropped.
    let mut buf_a = vec![0u8; MAX_RTP_PACKET + 1];
    let mut buf_b = vec![0u8; MAX_RTP_PACKET + 1];
    loop {
        let silent_until = liveness.iter().filter_map(RtpLiveness::poll_timeout).min();
        let silence = async {
            match silent_until {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let (leg, received) = tokio::select! {
            biased;
            order = control.recv() => match order {
                Some(RelayControl::Update(leg, negotiated)) => {
                    debug!(?leg, ?negotiated, "bridge leg updated");
                    liveness[index(leg)].set_on_hold(Instant::now(), on_hold(&negotiated));
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
        liveness[index(leg)].packet(now);
        let out = bridge.handle_packet(now, leg, source, bytes);
        send_all(&sockets, out).await;
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

//! The runtime side of bridging: one task relays RTP between two call legs' sockets
//! through a [`BridgeDirection`] each way, with symmetric latching on both legs.
//!
//! A leg handed to a relay is not also driven by a `MediaSession`: stop the leg's playback
//! and give its sockets here. Dropping the [`Relay`] stops it and frees the ports.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::debug;

use crate::media::bridge::{BridgeDirection, BridgeMode};
use crate::media::codec::CodecError;
use crate::media::latch::{Latch, LatchDecision};
use crate::media::rtp_ports::RtpSockets;
use crate::sdp::Negotiated;

/// Largest datagram relayed.
const MAX_RTP_BYTES: usize = 2048;

/// One leg of a bridge.
pub struct Leg {
    pub sockets: RtpSockets,
    pub media: Negotiated,
}

/// A running relay; dropping it stops the relay.
pub struct Relay {
    task: JoinHandle<()>,
    mode: BridgeMode,
}

impl Relay {
    /// Relay or transcode (the same either way: transcoding happens only without a
    /// shared codec).
    pub fn mode(&self) -> BridgeMode {
        self.mode
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Side {
    sockets: Arc<RtpSockets>,
    media: Negotiated,
    latch: Latch,
}

impl Side {
    /// Whether a packet is one this leg negotiated, and the latch lets it in.
    fn accepts(&mut self, source: std::net::SocketAddr, packet: &[u8]) -> bool {
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { return false };
        let pt = rtp.payload_type();
        if pt != self.media.codec.payload_type && Some(pt) != self.media.telephone_event {
            return false;
        }
        !matches!(self.latch.packet(source), LatchDecision::Drop)
    }
}

/// Starts relaying between `a` and `b`.
pub fn spawn_relay(a: Leg, b: Leg) -> Result<Relay, CodecError> {
    let a_to_b =
        BridgeDirection::new(&a.media, &b.media, rand::random(), rand::random(), rand::random())?;
    let b_to_a =
        BridgeDirection::new(&b.media, &a.media, rand::random(), rand::random(), rand::random())?;
    let mode = a_to_b.mode();
    let side = |leg: Leg| Side {
        latch: Latch::new(leg.media.remote_rtp),
        media: leg.media,
        sockets: Arc::new(leg.sockets),
    };
    let task = tokio::spawn(relay_loop(side(a), side(b), a_to_b, b_to_a));
    Ok(Relay { task, mode })
}

async fn relay_loop(
    mut a: Side,
    mut b: Side,
    mut a_to_b: BridgeDirection,
    mut b_to_a: BridgeDirection,
) {
    let mut buf_a = vec![0u8; MAX_RTP_BYTES];
    let mut buf_b = vec![0u8; MAX_RTP_BYTES];
    loop {
        let (from_a, len, source) = tokio::select! {
            got = a.sockets.rtp.recv_from(&mut buf_a) => match got {
                Ok((len, source)) => (true, len, source),
                Err(_) => continue,
            },
            got = b.sockets.rtp.recv_from(&mut buf_b) => match got {
                Ok((len, source)) => (false, len, source),
                Err(_) => continue,
            },
        };
        let (input, output, direction) =
            if from_a { (&mut a, &b, &mut a_to_b) } else { (&mut b, &a, &mut b_to_a) };
        let packet = if from_a {
            &buf_a[..len.min(MAX_RTP_BYTES)]
        } else {
            &buf_b[..len.min(MAX_RTP_BYTES)]
        };
        if !input.accepts(source, packet) {
            continue;
        }
        let relayed = direction.packet(packet);
        if relayed.dropped_dtmf {
            metrics::counter!("bridge_dtmf_dropped_total").increment(1);
        }
        let Some(target) = output.latch.target().filter(|_| output.media.direction.sends()) else {
            continue;
        };
        for p in relayed.packets {
            if let Err(err) = output.sockets.rtp.send_to(&p, target).await {
                debug!(%err, %target, "bridge send failed");
            }
        }
    }
}

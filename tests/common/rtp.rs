//! RTP as a test peer sees it: build packets, receive and read them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use zendesk_ivr::config::CodecName;
use zendesk_ivr::sdp::{Codec, Direction, Negotiated};

/// The fields of a received packet.
pub struct Rtp {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// A plain RTP packet (version 2, no marker, no extension).
pub fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    rtp_rs::RtpPacketBuilder::new()
        .payload_type(pt)
        .sequence(seq.into())
        .timestamp(ts)
        .ssrc(ssrc)
        .payload(payload)
        .build()
        .expect("a valid test packet")
}

/// The next packet on `socket` (within 5 s) and where it came from.
pub async fn receive(socket: &UdpSocket) -> (Rtp, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("RTP within 5 s")
        .expect("receive");
    let r = rtp_rs::RtpReader::new(&buf[..n]).expect("valid RTP");
    let rtp = Rtp {
        pt: r.payload_type(),
        seq: r.sequence_number().into(),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload().to_vec(),
    };
    (rtp, from)
}

/// What SDP negotiation would give for `name` on payload type `pt`, sending to `remote`.
pub fn negotiated(name: CodecName, pt: u8, te: Option<u8>, remote: SocketAddr) -> Negotiated {
    let (clock_rate, channels) = if name == CodecName::Opus { (48000, 2) } else { (8000, 1) };
    Negotiated {
        codec: Codec { name, payload_type: pt, clock_rate, channels },
        telephone_event: te,
        remote_rtp: Some(remote),
        direction: Direction::SendRecv,
        ptime_ms: 20,
        srtp: None,
    }
}

//! Bridging over loopback: phone A (PCMU) and phone B (PCMA) talk through two legs of the
//! endpoint; audio is transcoded, DTMF passed through with its payload type mapped, and
//! same-codec legs relay the payload untouched.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::bridge::BridgeMode;
use zendesk_ivr::media::codec::{alaw_to_linear, linear_to_ulaw};
use zendesk_ivr::media::relay::{Leg, spawn_relay};
use zendesk_ivr::media::rtp_ports::RtpPorts;
use zendesk_ivr::sdp::{Codec, Direction, Negotiated};

const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn media(name: CodecName, pt: u8, te: u8, remote: std::net::SocketAddr) -> Negotiated {
    Negotiated {
        codec: Codec { name, payload_type: pt, clock_rate: 8000, channels: 1 },
        telephone_event: Some(te),
        remote_rtp: Some(remote),
        direction: Direction::SendRecv,
        ptime_ms: 20,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    rtp_rs::RtpPacketBuilder::new()
        .payload_type(pt)
        .sequence(seq.into())
        .timestamp(ts)
        .ssrc(42)
        .payload(payload)
        .build()
        .expect("packet")
}

async fn recv(socket: &UdpSocket) -> (u8, Vec<u8>) {
    let mut buf = [0u8; 2048];
    let (len, _) = timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a packet within 5 s")
        .expect("recv");
    let r = rtp_rs::RtpReader::new(&buf[..len]).expect("RTP");
    (r.payload_type(), r.payload().to_vec())
}

fn pool() -> RtpPorts {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
    let base = probe.local_addr().expect("addr").port().saturating_sub(20).max(20_000) & !1;
    RtpPorts::new(LOCALHOST, LOCALHOST, base, base + 19)
}

#[tokio::test(flavor = "multi_thread")]
async fn pcmu_and_pcma_legs_are_transcoded_and_dtmf_is_mapped() {
    let ports = pool();
    let phone_a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let phone_b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let leg_a = ports.allocate().await.expect("ports");
    let leg_b = ports.allocate().await.expect("ports");
    let (addr_a, addr_b) = (leg_a.rtp_addr(), leg_b.rtp_addr());
    let relay = spawn_relay(
        Leg {
            sockets: leg_a,
            media: media(CodecName::Pcmu, 0, 101, phone_a.local_addr().unwrap()),
        },
        Leg { sockets: leg_b, media: media(CodecName::Pcma, 8, 96, phone_b.local_addr().unwrap()) },
    )
    .expect("relay");
    assert_eq!(relay.mode(), BridgeMode::Transcode);
    let level = 4000i16;
    phone_a.send_to(&rtp(0, 1, 0, &[linear_to_ulaw(level); 160]), addr_a).await.expect("send");
    let (pt, payload) = recv(&phone_b).await;
    assert_eq!(pt, 8, "PCMA toward B");
    assert_eq!(payload.len(), 160);
    let heard = alaw_to_linear(payload[80]);
    assert!((heard - level).abs() < level / 10, "heard {heard}, sent {level}");
    // B's key press reaches A with A's telephone-event number.
    phone_b.send_to(&rtp(96, 1, 0, &[9, 10, 0, 160]), addr_b).await.expect("send");
    let (pt, payload) = recv(&phone_a).await;
    assert_eq!((pt, payload), (101, vec![9, 10, 0, 160]));
    drop(relay);
}

#[tokio::test(flavor = "multi_thread")]
async fn same_codec_legs_relay_untouched() {
    let ports = pool();
    let phone_a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let phone_b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let leg_a = ports.allocate().await.expect("ports");
    let leg_b = ports.allocate().await.expect("ports");
    let addr_b = leg_b.rtp_addr();
    let relay = spawn_relay(
        Leg {
            sockets: leg_a,
            media: media(CodecName::Pcmu, 0, 101, phone_a.local_addr().unwrap()),
        },
        Leg {
            sockets: leg_b,
            media: media(CodecName::Pcmu, 0, 101, phone_b.local_addr().unwrap()),
        },
    )
    .expect("relay");
    assert_eq!(relay.mode(), BridgeMode::Relay);
    let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
    // A packet of a payload type B's leg never negotiated is dropped; the next one passes.
    phone_b.send_to(&rtp(18, 1, 0, &payload), addr_b).await.expect("send");
    phone_b.send_to(&rtp(0, 2, 160, &payload), addr_b).await.expect("send");
    assert_eq!(recv(&phone_a).await, (0, payload));
}

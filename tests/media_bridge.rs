//! The bridge relay on real UDP sockets: two "phones" (plain sockets on loopback) talk
//! through it and each receives the other's audio with our headers.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::bridge::{LegSetup, StreamState};
use zendesk_ivr::media::bridge_relay::{
    RelayControl, RelayLeg, RelayOutcome, RelaySettings, relay,
};
use zendesk_ivr::media::codec::ulaw_to_linear;
use zendesk_ivr::media::dtmf::rfc4733::TelephoneEvent;

const WAIT: Duration = Duration::from_secs(5);

async fn socket() -> Arc<UdpSocket> {
    Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback"))
}

use common::rtp::{negotiated, packet as rtp, receive};

/// A running relay between two legs, with the phones' and relay's sockets.
struct Setup {
    phone_a: Arc<UdpSocket>,
    phone_b: Arc<UdpSocket>,
    relay_a: SocketAddr,
    relay_b: SocketAddr,
    stop: mpsc::UnboundedSender<RelayControl>,
    task: tokio::task::JoinHandle<RelayOutcome>,
}

async fn start(a: (CodecName, u8, Option<u8>), b: (CodecName, u8, Option<u8>)) -> Setup {
    start_with_timeout(a, b, Duration::ZERO).await
}

async fn start_with_timeout(
    a: (CodecName, u8, Option<u8>),
    b: (CodecName, u8, Option<u8>),
    rtp_timeout: Duration,
) -> Setup {
    let (phone_a, phone_b) = (socket().await, socket().await);
    let (relay_a, relay_b) = (socket().await, socket().await);
    let leg_a = RelayLeg {
        setup: LegSetup {
            negotiated: negotiated(a.0, a.1, a.2, phone_a.local_addr().expect("addr")),
            outgoing: StreamState { ssrc: 0xA, next_seq: 1000, next_ts: 50_000 },
        },
        socket: relay_a.clone(),
        rtcp: None,
        sent_before: Default::default(),
    };
    let leg_b = RelayLeg {
        setup: LegSetup {
            negotiated: negotiated(b.0, b.1, b.2, phone_b.local_addr().expect("addr")),
            outgoing: StreamState { ssrc: 0xB, next_seq: 2000, next_ts: 70_000 },
        },
        socket: relay_b.clone(),
        rtcp: None,
        sent_before: Default::default(),
    };
    let (stop, control) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        relay(leg_a, leg_b, control, RelaySettings { rtp_timeout, cname: "test".into() })
            .await
            .expect("relay builds")
    });
    Setup {
        phone_a,
        phone_b,
        relay_a: relay_a.local_addr().expect("addr"),
        relay_b: relay_b.local_addr().expect("addr"),
        stop,
        task,
    }
}

impl Setup {
    async fn finish(self) -> RelayOutcome {
        let _ = self.stop.send(RelayControl::Stop);
        tokio::time::timeout(WAIT, self.task).await.expect("relay stops").expect("relay task")
    }
}

#[tokio::test]
async fn two_phones_hear_each_other_with_rewritten_headers() {
    let s = start((CodecName::Opus, 111, Some(101)), (CodecName::Opus, 96, Some(100))).await;
    let payload = [0x78u8, 1, 2, 3, 4, 5];
    for i in 0..10u16 {
        s.phone_a
            .send_to(&rtp(111, 300 + i, 9600 * u32::from(i), 0x1111, &payload), s.relay_a)
            .await
            .expect("send");
        let (h, from) = receive(&s.phone_b).await;
        assert_eq!(from, s.relay_b, "B hears the relay's B socket");
        assert_eq!((h.pt, h.ssrc, h.seq), (96, 0xB, 2000 + i));
        assert_eq!(h.ts, 70_000 + 9600 * u32::from(i));
        assert_eq!(h.marker, i == 0);
        assert_eq!(h.payload, payload);
    }
    for i in 0..5u16 {
        s.phone_b
            .send_to(&rtp(96, i, 960 * u32::from(i), 0x2222, &payload), s.relay_b)
            .await
            .expect("send");
        let (h, from) = receive(&s.phone_a).await;
        assert_eq!(from, s.relay_a);
        assert_eq!((h.pt, h.ssrc, h.seq, h.ts), (111, 0xA, 1000 + i, 50_000 + 960 * u32::from(i)));
    }
    // A key press passes with its payload type mapped.
    let event = TelephoneEvent { event: 9, end: true, volume: 10, duration: 960 }.to_bytes();
    s.phone_a.send_to(&rtp(101, 310, 96_000, 0x1111, &event), s.relay_a).await.expect("send");
    let (h, _) = receive(&s.phone_b).await;
    assert_eq!((h.pt, h.ts, h.payload.as_slice()), (100, 70_000 + 96_000, &event[..]));
    // Junk is dropped and the relay carries on.
    s.phone_a.send_to(b"junk", s.relay_a).await.expect("send");
    s.phone_a.send_to(&rtp(111, 311, 105_600, 0x1111, &payload), s.relay_a).await.expect("send");
    let (h, _) = receive(&s.phone_b).await;
    assert_eq!(h.seq, 2011);

    let outcome = s.finish().await;
    assert_eq!(outcome.stats.a_to_b.received_packets, 13);
    assert_eq!(outcome.stats.a_to_b.sent_packets, 12);
    assert_eq!(outcome.stats.a_to_b.dropped_packets, 1);
    assert_eq!(outcome.stats.b_to_a.received_packets, 5);
    assert_eq!(outcome.stats.b_to_a.sent_packets, 5);
    assert_eq!(outcome.stats.b_to_a.sent_bytes, 5 * (12 + payload.len() as u64));
    assert_eq!(
        outcome.b,
        StreamState { ssrc: 0xB, next_seq: 2012, next_ts: 70_000 + 105_600 + 960 }
    );
    assert_eq!(outcome.a, StreamState { ssrc: 0xA, next_seq: 1005, next_ts: 50_000 + 4800 });
}

#[tokio::test]
async fn relay_transcodes_and_follows_a_phone_behind_nat() {
    let s = start((CodecName::Pcmu, 0, None), (CodecName::Pcma, 8, None)).await;
    // Phone B really sends from another port than its SDP says.
    let natted_b = socket().await;
    let silence_alaw = [0xD5u8; 160];
    natted_b.send_to(&rtp(8, 1, 0, 0x2222, &silence_alaw), s.relay_b).await.expect("send");
    let (h, _) = receive(&s.phone_a).await;
    assert_eq!(h.pt, 0);
    assert_eq!(h.payload.len(), 160);
    assert!(
        h.payload.iter().all(|&b| ulaw_to_linear(b).abs() <= 16),
        "A-law silence arrives as µ-law silence: {:02x?}",
        h.payload
    );
    // A's audio now goes to where B's packets came from.
    s.phone_a.send_to(&rtp(0, 1, 0, 0x1111, &[0xFFu8; 160]), s.relay_a).await.expect("send");
    let (h, from) = receive(&natted_b).await;
    assert_eq!((from, h.pt, h.ssrc, h.payload.len()), (s.relay_b, 8, 0xB, 160));
    let phone_b = s.phone_b.clone();
    let outcome = s.finish().await;
    assert_eq!(outcome.remote_b, Some(natted_b.local_addr().expect("addr")));
    // Nothing went to B's SDP address (loopback delivers at send time, so anything sent
    // there would be queued by now).
    let mut buf = [0u8; 64];
    let quiet = phone_b.try_recv_from(&mut buf);
    assert!(matches!(&quiet, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "{quiet:?}");
}

#[tokio::test]
async fn a_silent_leg_ends_the_relay_unless_it_is_on_hold() {
    let s = start_with_timeout(
        (CodecName::Pcmu, 0, None),
        (CodecName::Pcmu, 0, None),
        Duration::from_millis(600),
    )
    .await;
    // B is put on hold: only A's silence counts. A talks for a while, then stops.
    let mut held = negotiated(CodecName::Pcmu, 0, None, s.phone_b.local_addr().expect("addr"));
    held.direction = zendesk_ivr::sdp::Direction::SendOnly;
    s.stop.send(RelayControl::Update(zendesk_ivr::media::bridge::Leg::B, held)).expect("control");
    for i in 0..20u16 {
        s.phone_a
            .send_to(&rtp(0, i, 160 * u32::from(i), 0x1, &[0x55; 160]), s.relay_a)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcome = tokio::time::timeout(WAIT, s.task).await.expect("the relay ends").expect("task");
    assert_eq!(outcome.timed_out, Some(zendesk_ivr::media::bridge::Leg::A));
}

/// While bridged, each leg gets RTCP for our stream on it: an SR (we relay the other
/// phone's audio to it) with a reception block for what it sends, and a BYE at the end.
#[tokio::test]
async fn each_leg_gets_rtcp_reports_and_a_bye() {
    use zendesk_ivr::media::rtcp::{ReceptionStats, build_report, ntp_now};
    let (phone_a, phone_b) = (socket().await, socket().await);
    let (phone_a_rtcp, relay_a, relay_a_rtcp, relay_b) =
        (socket().await, socket().await, socket().await, socket().await);
    let leg =
        |phone: &UdpSocket, relay: &Arc<UdpSocket>, rtcp: Option<Arc<UdpSocket>>, ssrc| RelayLeg {
            setup: LegSetup {
                negotiated: negotiated(CodecName::Pcmu, 0, None, phone.local_addr().expect("addr")),
                outgoing: StreamState { ssrc, next_seq: 1, next_ts: 0 },
            },
            socket: relay.clone(),
            rtcp,
            sent_before: Default::default(),
        };
    let leg_a = leg(&phone_a, &relay_a, Some(relay_a_rtcp.clone()), 0xA);
    let leg_b = leg(&phone_b, &relay_b, None, 0xB);
    let (stop, control) = mpsc::unbounded_channel();
    let settings = RelaySettings { rtp_timeout: Duration::ZERO, cname: "test".into() };
    let task = tokio::spawn(relay(leg_a, leg_b, control, settings));
    // Phone A says where its RTCP comes from with a report of its own.
    let rr = build_report(
        std::time::Instant::now(),
        ntp_now(),
        0x1,
        None,
        &mut ReceptionStats::default(),
        "a",
    );
    phone_a_rtcp.send_to(&rr, relay_a_rtcp.local_addr().expect("addr")).await.expect("send");
    // Both phones talk for the first report's interval (at most 7.5 s).
    let talk = async {
        for i in 0..400u16 {
            let ts = 160 * u32::from(i);
            let b_addr = relay_b.local_addr().expect("addr");
            let a_addr = relay_a.local_addr().expect("addr");
            phone_b.send_to(&rtp(0, i, ts, 0x2, &[0x55; 160]), b_addr).await.expect("send");
            phone_a.send_to(&rtp(0, i, ts, 0x1, &[0x55; 160]), a_addr).await.expect("send");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut buf = [0u8; 1500];
    let report = tokio::select! {
        got = phone_a_rtcp.recv_from(&mut buf) => got.expect("recv").0,
        () = talk => panic!("no RTCP report reached phone A"),
    };
    assert_eq!(buf[1], 200, "an SR: the relay sends phone B's audio to A");
    assert_eq!(u32::from_be_bytes(buf[4..8].try_into().unwrap()), 0xA, "our SSRC on leg A");
    assert!(u32::from_be_bytes(buf[20..24].try_into().unwrap()) > 0, "packets sent");
    assert_eq!(buf[0] & 0x1F, 1, "a reception block");
    assert_eq!(u32::from_be_bytes(buf[28..32].try_into().unwrap()), 0x1, "for phone A's stream");
    assert!(report > 32);
    stop.send(RelayControl::Stop).expect("stop");
    tokio::time::timeout(WAIT, task).await.expect("stops").expect("task").expect("relay");
    let (n, _) = tokio::time::timeout(WAIT, phone_a_rtcp.recv_from(&mut buf))
        .await
        .expect("a BYE")
        .expect("recv");
    assert_eq!(&buf[n - 8..n - 4], &[0x81, 203, 0, 1], "the compound packet ends with a BYE");
}

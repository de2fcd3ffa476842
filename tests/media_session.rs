//! One call's media over real loopback sockets, with a test socket as the caller: the RTP
//! we send (header fields, marker, pacing), symmetric latching, playback end and barge-in,
//! RTCP, the RTP timeout, and one worker reading for many calls.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::rtp::{self, Rtp};
use tokio::net::UdpSocket;
use tokio::time::timeout;

use zendesk_ivr::config::{CodecName, MediaConfig};
use zendesk_ivr::media::engine::MediaEngine;
use zendesk_ivr::media::playback::{PlayMode, StopReason};
use zendesk_ivr::media::prompt::{Prompt, encode_pcm};
use zendesk_ivr::media::rtp_ports::RtpPorts;
use zendesk_ivr::media::session::{MediaEvent, MediaSession};
use zendesk_ivr::sdp::{Direction, Negotiated};

const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn recv_rtp(socket: &UdpSocket) -> Rtp {
    rtp::receive(socket).await.0
}

fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    rtp::packet(pt, seq, ts, 0x1234, payload)
}

fn negotiated(remote: SocketAddr) -> Negotiated {
    rtp::negotiated(CodecName::Pcmu, 0, Some(101), remote)
}

/// A prompt of `frames` frames, each a distinct constant byte (1, 2, 3, ...).
fn marked_prompt(frames: usize) -> Prompt {
    let samples: Vec<i16> =
        (0..frames).flat_map(|f| std::iter::repeat_n((f as i16 + 1) * 500, 160)).collect();
    encode_pcm(&samples, CodecName::Pcmu).expect("prompt")
}

async fn setup(rtp_timeout_s: u64) -> (MediaEngine, RtpPorts) {
    let config = MediaConfig { rtp_timeout_s, workers: 1, ..MediaConfig::default() };
    let engine = MediaEngine::start(&config).await.expect("engine");
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
    let base = probe.local_addr().expect("addr").port().saturating_sub(40).max(20_000) & !1;
    drop(probe);
    (engine, RtpPorts::new(LOCALHOST, LOCALHOST, base, base + 39))
}

/// Two sockets on ports P and P + 1 (RTP and RTCP of the test caller).
async fn socket_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..100 {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = rtp.local_addr().expect("addr").port();
        if let Some(next) = port.checked_add(1)
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(LOCALHOST, next)).await
        {
            return (rtp, rtcp);
        }
    }
    panic!("no two adjacent free UDP ports");
}

async fn next_event(session: &mut MediaSession) -> MediaEvent {
    timeout(Duration::from_secs(5), session.next_event()).await.expect("a media event within 5 s")
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_paced_rtp_plays_a_prompt_and_reports_its_end() {
    let (engine, ports) = setup(0).await;
    let (caller, caller_rtcp) = socket_pair().await;
    let sockets = ports.allocate().await.expect("ports");
    let ours = sockets.rtp_addr();
    let mut session =
        engine.session(sockets, &negotiated(caller.local_addr().expect("addr"))).expect("session");
    // Silence first (no marker), then the prompt with a marker on its first frame.
    let first = recv_rtp(&caller).await;
    assert_eq!(first.pt, 0);
    assert!(!first.marker);
    let id = session.play(vec![marked_prompt(5)], PlayMode::Once, false);
    let mut packets = vec![first];
    let started = std::time::Instant::now();
    let mut prompt_frames = Vec::new();
    while prompt_frames.len() < 5 {
        let p = recv_rtp(&caller).await;
        if p.payload.iter().any(|&b| b != 0xff) {
            prompt_frames.push((p.marker, p.payload[0]));
        }
        packets.push(p);
    }
    assert!(prompt_frames[0].0, "marker on the prompt's first frame");
    assert!(prompt_frames[1..].iter().all(|f| !f.0), "no marker inside the prompt");
    let distinct: std::collections::BTreeSet<u8> = prompt_frames.iter().map(|f| f.1).collect();
    assert_eq!(distinct.len(), 5, "five different frames in order");
    for w in packets.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc);
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160));
    }
    let expected = Duration::from_millis(20 * (packets.len() as u64 - 1));
    let took = started.elapsed();
    assert!(
        took + Duration::from_millis(60) >= expected,
        "{} packets in {took:?}: a burst",
        packets.len()
    );
    match next_event(&mut session).await {
        MediaEvent::PlaybackFinished(f) => {
            assert_eq!((f.id, f.reason), (id, StopReason::Completed))
        }
        other => panic!("expected the end of the prompt, got {other:?}"),
    }
    // RTCP: a report reaches the RTP port + 1 within 2.5-7.5 s.
    let mut buf = [0u8; 1500];
    let (len, from) = timeout(Duration::from_secs(9), caller_rtcp.recv_from(&mut buf))
        .await
        .expect("RTCP")
        .expect("recv");
    assert_eq!(from.port(), ours.port() + 1, "from our RTCP port");
    assert_eq!(buf[1], 200, "a sender report (we have sent)");
    assert!(len >= 28);
    let ssrc = &buf[4..8].to_vec();
    // The call ends: a last report closed by a BYE for our SSRC.
    drop(session);
    let (len, _) = timeout(Duration::from_secs(5), caller_rtcp.recv_from(&mut buf))
        .await
        .expect("RTCP BYE")
        .expect("recv");
    let bye = &buf[len - 8..len];
    assert_eq!(bye[1], 203, "the packet ends with a BYE");
    assert_eq!(&bye[4..8], ssrc.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn latches_to_the_real_source_and_a_digit_barges_in() {
    let (engine, ports) = setup(0).await;
    let announced = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let nat = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sockets = ports.allocate().await.expect("ports");
    let ours = sockets.rtp_addr();
    let mut session = engine
        .session(sockets, &negotiated(announced.local_addr().expect("addr")))
        .expect("session");
    let id = session.play(vec![marked_prompt(50)], PlayMode::Loop, true);
    recv_rtp(&announced).await;
    // The caller really sends from another address: we follow it.
    nat.send_to(&packet(0, 1, 0, &[0xff; 160]), ours).await.expect("send");
    let moved = recv_rtp(&nat).await;
    assert_eq!(moved.pt, 0);
    // Key 7 by RFC 4733 stops the looping prompt.
    nat.send_to(&packet(101, 2, 160, &[7, 10, 0, 160]), ours).await.expect("send");
    match next_event(&mut session).await {
        MediaEvent::Digit(d) => assert_eq!(d.digit, '7'),
        other => panic!("expected a digit, got {other:?}"),
    }
    match next_event(&mut session).await {
        MediaEvent::PlaybackFinished(f) => {
            assert_eq!((f.id, f.reason), (id, StopReason::BargeIn('7')))
        }
        other => panic!("expected barge-in, got {other:?}"),
    }
    // SIP INFO digits come out the same way.
    session.sip_info("application/dtmf-relay", b"Signal=#\r\nDuration=100\r\n");
    match next_event(&mut session).await {
        MediaEvent::Digit(d) => assert_eq!(d.digit, '#'),
        other => panic!("expected a digit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_from_the_caller_times_out_but_hold_does_not() {
    let (engine, ports) = setup(1).await;
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let remote = caller.local_addr().expect("addr");
    let mut held = negotiated(remote);
    held.direction = Direction::RecvOnly;
    let mut on_hold =
        engine.session(ports.allocate().await.expect("ports"), &held).expect("session");
    let mut live = engine
        .session(ports.allocate().await.expect("ports"), &negotiated(remote))
        .expect("session");
    let started = std::time::Instant::now();
    assert_eq!(next_event(&mut live).await, MediaEvent::RtpTimeout);
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    assert!(
        timeout(Duration::from_millis(1500), on_hold.next_event()).await.is_err(),
        "a call on hold is not timed out"
    );
    assert_eq!(ports.in_use(), 2);
    drop(live);
    drop(on_hold);
    // The ports go back to the pool once the worker lets go of the sockets.
    timeout(Duration::from_secs(5), async {
        while ports.in_use() > 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("ports released");
}

/// One worker reads for every call on it: each of eight callers presses its own key and
/// each session gets its own digit; then the callers who fall silent time out while the
/// ones still sending do not.
#[tokio::test(flavor = "multi_thread")]
async fn one_worker_reads_every_call_on_it() {
    const CALLS: usize = 8;
    let (engine, ports) = setup(1).await;
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let caller = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let sockets = ports.allocate().await.expect("ports");
        let ours = sockets.rtp_addr();
        let remote = caller.local_addr().expect("addr");
        let session = engine.session(sockets, &negotiated(remote)).expect("session");
        calls.push((caller, ours, session));
    }
    for (i, (caller, ours, _)) in calls.iter().enumerate() {
        let event = [i as u8 + 1, 10, 0, 160];
        caller.send_to(&packet(101, 1, 0, &event), ours).await.expect("send");
    }
    for (i, (_, _, session)) in calls.iter_mut().enumerate() {
        match next_event(session).await {
            MediaEvent::Digit(d) => {
                assert_eq!(d.digit, char::from(b'1' + i as u8), "call {i} got its own key")
            }
            other => panic!("call {i}: expected a digit, got {other:?}"),
        }
    }
    // The first half keep sending audio; the second half fall silent.
    let (live, silent) = calls.split_at_mut(CALLS / 2);
    let speakers: Vec<_> = live.iter().map(|(caller, ours, _)| (caller.clone(), *ours)).collect();
    let talking = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for seq in 2u16.. {
            tick.tick().await;
            for (caller, ours) in &speakers {
                let audio = packet(0, seq, u32::from(seq) * 160, &[0xff; 160]);
                let _ = caller.send_to(&audio, ours).await;
            }
        }
    });
    for (i, (_, _, session)) in silent.iter_mut().enumerate() {
        assert_eq!(next_event(session).await, MediaEvent::RtpTimeout, "silent call {i}");
    }
    for (i, (_, _, session)) in live.iter_mut().enumerate() {
        let event = timeout(Duration::from_millis(500), session.next_event()).await;
        assert!(event.is_err(), "call {i} still sends but got {event:?}");
    }
    talking.abort();
}

/// The worker reads the caller's RTCP: once the caller's reports come from a port other
/// than its RTP port + 1, ours go there.
#[tokio::test(flavor = "multi_thread")]
async fn our_reports_follow_where_the_callers_rtcp_comes_from() {
    let (engine, ports) = setup(0).await;
    // The RTP port + 1 is taken by the caller, where our reports would go by default.
    let (caller, _caller_rtcp) = socket_pair().await;
    let elsewhere = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sockets = ports.allocate().await.expect("ports");
    let ours = sockets.rtp_addr();
    let ours_rtcp = SocketAddr::new(ours.ip(), ours.port() + 1);
    let _session =
        engine.session(sockets, &negotiated(caller.local_addr().expect("addr"))).expect("session");
    // A receiver report (RTCP version 2, one 32-bit word after the header: the SSRC).
    let rr = [0x80, 201, 0, 1, 0, 0, 0x12, 0x34];
    elsewhere.send_to(&rr, ours_rtcp).await.expect("send");
    let mut buf = [0u8; 1500];
    let (len, from) = timeout(Duration::from_secs(9), elsewhere.recv_from(&mut buf))
        .await
        .expect("our report within 7.5 s goes where the caller's RTCP came from")
        .expect("recv");
    assert_eq!(from, ours_rtcp);
    assert!(len >= 8 && buf[1] == 200, "a sender report");
}

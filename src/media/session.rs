//! One call's RTP (runtime layer): the outgoing stream on a media worker, and a receive
//! task that reads the call's RTP and RTCP sockets.
//!
//! Sending: random SSRC, sequence and timestamp origin; the worker's pacer sets timestamps
//! and the playback sets the marker bit (see [`crate::media::worker`]).
//!
//! Receiving: packets must be well-formed RTP with a negotiated payload type, from the
//! source the [`Latch`] accepts (symmetric RTP; the rule is documented there). The audio
//! payload type feeds the RTCP statistics and, when telephone-event was not negotiated and
//! the codec is G.711, the in-band DTMF detector; the telephone-event payload type feeds
//! the RFC 4733 receiver. SIP INFO digits come through [`MediaSession::sip_info`]. All
//! three become [`MediaEvent::Digit`]. RTCP reports go out every ~5 s. With no RTP for
//! `rtp_timeout` while not on hold, [`MediaEvent::RtpTimeout`] tells the call to hang up.
//!
//! Dropping the session stops both halves; the RTP ports go back to the pool once the
//! worker and the receive task have let go of the sockets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::CodecName;
use crate::media::bridge::StreamState;
use crate::media::codec::{CodecInfo, Decoder, Encoder};
use crate::media::dtmf::{self, DigitEvent, InbandDetector, Rfc4733Receiver};
use crate::media::latch::{Latch, LatchDecision};
use crate::media::liveness::{RtpLiveness, on_hold};
use crate::media::playback::{Finished, PlayMode, PlayRequest, PlaybackId, StopReason};
use crate::media::prompt::Prompt;
use crate::media::rtcp::{self, ReceptionStats, SenderInfo};
use crate::media::rtp_ports::RtpSockets;
use crate::media::worker::{Command, MediaWorkers, SendCounters, StreamHandle, StreamSetup};
use crate::sdp::Negotiated;

/// Largest RTP datagram read; longer ones are cut (and then fail to parse or are noise).
const MAX_RTP_BYTES: usize = 2048;

#[doc(hidden)]
pub mod fuzzing;

/// Digits and timeouts queued for the call before new ones are dropped.
const EVENT_QUEUE: usize = 256;

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Codec(#[from] crate::media::codec::CodecError),
}

/// Per-session settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Hang up after this long without RTP while not on hold (zero disables).
    pub rtp_timeout: Duration,
    /// Our RTCP CNAME.
    pub cname: String,
}

/// What the media of a call reports to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    Digit(DigitEvent),
    PlaybackFinished(Finished),
    /// No RTP for the configured time while not on hold: the call is dead.
    RtpTimeout,
}

/// One call's media.
pub struct MediaSession {
    stream: StreamHandle,
    codec: CodecName,
    negotiated: watch::Sender<Negotiated>,
    received: mpsc::Receiver<MediaEvent>,
    finished: mpsc::UnboundedReceiver<Finished>,
    receive_task: JoinHandle<()>,
    /// Tells the receive task the call is over: it sends an RTCP BYE and stops.
    end: Option<oneshot::Sender<()>>,
    pending: VecDeque<MediaEvent>,
    next_playback: PlaybackId,
    /// The playback in progress that a digit stops.
    barge_in: Option<PlaybackId>,
    /// What [`MediaSession::detach`] hands back.
    sockets: Arc<RtpSockets>,
    counters: Arc<SendCounters>,
    origin: StreamState,
    samples_per_frame: u32,
}

/// What a stopped session gives back: its sockets (the ports stay reserved while they
/// live) and where its outgoing stream stopped, so another sender (a bridge) can continue
/// it without an SSRC, sequence or timestamp jump.
#[derive(Debug)]
pub struct DetachedMedia {
    pub sockets: Arc<RtpSockets>,
    pub stream: StreamState,
    /// What the stream sent so far, so that its RTCP sender counts go on from there.
    pub sent: SentCounts,
}

/// Packets and payload octets a stream sent (RTCP SR counters, RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentCounts {
    pub packets: u32,
    pub octets: u32,
}

impl MediaSession {
    /// Starts sending (silence) and receiving for a call whose offer/answer gave `media`.
    pub fn start(
        workers: &MediaWorkers,
        sockets: RtpSockets,
        media: &Negotiated,
        settings: SessionSettings,
    ) -> Result<MediaSession, MediaError> {
        let codec = media.codec.name;
        let silence = Encoder::new(codec)?.encode(&vec![0i16; codec.samples_per_frame()])?;
        let sockets = Arc::new(sockets);
        let counters = Arc::new(SendCounters::default());
        let (finished_tx, finished) = mpsc::unbounded_channel();
        let ssrc: u32 = rand::random();
        let origin = StreamState { ssrc, next_seq: rand::random(), next_ts: rand::random() };
        let samples_per_frame = codec.timestamp_increment();
        let stream = workers.add(StreamSetup {
            sockets: sockets.clone(),
            payload_type: media.codec.payload_type,
            ssrc,
            first_sequence: origin.next_seq,
            first_timestamp: origin.next_ts,
            samples_per_frame,
            silence,
            finished: finished_tx,
            counters: counters.clone(),
        });
        let (negotiated, negotiated_rx) = watch::channel(*media);
        let (events_tx, received) = mpsc::channel(EVENT_QUEUE);
        let receiver = Receiver::new(Instant::now(), media, &settings, ssrc, codec)?;
        // Before any playback is queued, so a prompt's first frames are not sent nowhere.
        stream.send(Command::Target(stream.id, receiver.send_target()));
        let (end, ended) = oneshot::channel();
        let receive_task = tokio::spawn(receive_loop(
            receiver,
            sockets.clone(),
            stream.clone(),
            counters.clone(),
            negotiated_rx,
            events_tx,
            ended,
        ));
        Ok(MediaSession {
            stream,
            codec,
            negotiated,
            received,
            finished,
            receive_task,
            end: Some(end),
            pending: VecDeque::new(),
            next_playback: 1,
            barge_in: None,
            sockets,
            counters,
            origin,
            samples_per_frame,
        })
    }

    /// Stops sending and receiving and hands back the sockets and the outgoing stream's
    /// state. Returns once the worker has let go of the stream, so nothing more is sent
    /// on it.
    pub async fn detach(mut self) -> DetachedMedia {
        self.receive_task.abort();
        let _ = (&mut self.receive_task).await;
        self.stream.send(Command::Remove(self.stream.id));
        // The worker drops the stream's `finished` sender when it removes the stream.
        while self.finished.recv().await.is_some() {}
        let packets = self.counters.packets.load(Ordering::Relaxed);
        let stream = if packets == 0 {
            self.origin
        } else {
            let last_ts = self.counters.last_timestamp.load(Ordering::Relaxed);
            StreamState {
                ssrc: self.origin.ssrc,
                // Sequence numbers of sends that failed never reached the peer.
                next_seq: self.origin.next_seq.wrapping_add(packets as u16),
                next_ts: last_ts.wrapping_add(self.samples_per_frame),
            }
        };
        let sent = SentCounts { packets, octets: self.counters.octets.load(Ordering::Relaxed) };
        DetachedMedia { sockets: self.sockets.clone(), stream, sent }
    }

    /// The codec the call uses (prompts must be encoded for it).
    pub fn codec(&self) -> CodecName {
        self.codec
    }

    /// A re-INVITE or UPDATE changed the media (hold, unhold, new address).
    pub fn update(&self, media: &Negotiated) {
        if media.codec.name != self.codec {
            warn!(old = ?self.codec, new = ?media.codec.name, "codec change mid-call is not supported; keeping the first");
        }
        self.negotiated.send_replace(*media);
    }

    /// Plays `prompts` (replacing what plays now, which is reported as stopped). With
    /// `barge_in`, the first digit stops it.
    pub fn play(&mut self, prompts: Vec<Prompt>, mode: PlayMode, barge_in: bool) -> PlaybackId {
        let id = self.next_playback;
        self.next_playback += 1;
        self.barge_in = barge_in.then_some(id);
        self.stream
            .send(Command::Play(self.stream.id, PlayRequest { id, prompts, mode, barge_in }));
        id
    }

    /// Stops what plays now (reported as [`StopReason::Stopped`]).
    pub fn stop_playback(&mut self) {
        self.barge_in = None;
        self.stream.send(Command::Stop(self.stream.id, None, StopReason::Stopped));
    }

    /// A SIP INFO arrived; a DTMF body becomes a digit event.
    pub fn sip_info(&mut self, content_type: &str, body: &[u8]) {
        match dtmf::parse_info(content_type, body) {
            Some(digit) => self.pending.push_back(MediaEvent::Digit(digit)),
            None => debug!(content_type, "SIP INFO without a DTMF digit"),
        }
    }

    /// The next event. Cancel-safe: use it in `select!`.
    pub async fn next_event(&mut self) -> MediaEvent {
        let event = match self.pending.pop_front() {
            Some(e) => e,
            None => tokio::select! {
                Some(e) = self.received.recv() => e,
                Some(f) = self.finished.recv() => MediaEvent::PlaybackFinished(f),
                else => std::future::pending().await,
            },
        };
        match event {
            MediaEvent::Digit(d) => {
                if let Some(id) = self.barge_in.take() {
                    self.stream.send(Command::Stop(
                        self.stream.id,
                        Some(id),
                        StopReason::BargeIn(d.digit),
                    ));
                }
            }
            MediaEvent::PlaybackFinished(f) if self.barge_in == Some(f.id) => self.barge_in = None,
            _ => {}
        }
        event
    }
}

impl Drop for MediaSession {
    /// The call is over: the worker stops sending and the receive task sends an RTCP BYE
    /// and ends (letting go of the sockets). After [`MediaSession::detach`] the stream
    /// goes on elsewhere, so no BYE.
    fn drop(&mut self) {
        if let Some(end) = self.end.take()
            && end.send(()).is_err()
        {
            self.receive_task.abort();
        }
        self.stream.send(Command::Remove(self.stream.id));
    }
}

/// The receive side's state (everything but the sockets).
struct Receiver {
    t_ref: Instant,
    media: Negotiated,
    latch: Latch,
    liveness: RtpLiveness,
    timed_out: bool,
    rfc4733: Option<Rfc4733Receiver>,
    inband: Option<(Decoder, InbandDetector)>,
    pcm: Vec<i16>,
    digits: Vec<DigitEvent>,
    stats: ReceptionStats,
    ssrc: u32,
    cname: String,
    next_report: Instant,
    packets_at_last_report: u32,
    rtcp_source: Option<SocketAddr>,
}

impl Receiver {
    fn new(
        now: Instant,
        media: &Negotiated,
        settings: &SessionSettings,
        ssrc: u32,
        codec: CodecName,
    ) -> Result<Receiver, MediaError> {
        let rfc4733 =
            media.telephone_event.map(|pt| Rfc4733Receiver::new(pt, media.codec.clock_rate));
        let inband = match (rfc4733.is_none(), codec) {
            (true, CodecName::Pcmu | CodecName::Pcma) => {
                Some((Decoder::new(codec)?, InbandDetector::new()))
            }
            _ => None,
        };
        Ok(Receiver {
            t_ref: now,
            media: *media,
            latch: Latch::new(media.remote_rtp),
            liveness: RtpLiveness::new(now, settings.rtp_timeout, on_hold(media)),
            timed_out: false,
            rfc4733,
            inband,
            pcm: Vec::with_capacity(512),
            digits: Vec::new(),
            stats: ReceptionStats::default(),
            ssrc,
            cname: settings.cname.clone(),
            next_report: now + rtcp::report_interval(rand::random()),
            packets_at_last_report: 0,
            rtcp_source: None,
        })
    }

    /// Where the worker should send, given the latch and our direction.
    fn send_target(&self) -> Option<SocketAddr> {
        if self.media.direction.sends() { self.latch.target() } else { None }
    }

    fn renegotiated(&mut self, now: Instant, media: Negotiated) {
        self.latch.signal(media.remote_rtp);
        self.liveness.set_on_hold(now, on_hold(&media));
        if media.telephone_event != self.media.telephone_event {
            self.rfc4733 =
                media.telephone_event.map(|pt| Rfc4733Receiver::new(pt, media.codec.clock_rate));
        }
        self.media = media;
    }

    /// One datagram on the RTP socket. Returns a new send target when the latch moved.
    fn rtp(&mut self, now: Instant, source: SocketAddr, packet: &[u8]) -> Option<SocketAddr> {
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else {
            metrics::counter!("rtp_invalid_packets_total").increment(1);
            return None;
        };
        let pt = rtp.payload_type();
        let is_audio = pt == self.media.codec.payload_type;
        let is_event = self.rfc4733.as_ref().is_some_and(|r| r.payload_type() == pt);
        if !is_audio && !is_event {
            metrics::counter!("rtp_invalid_packets_total").increment(1);
            return None;
        }
        let moved = match self.latch.packet(source) {
            LatchDecision::Drop => {
                metrics::counter!("rtp_unlatched_packets_total").increment(1);
                return None;
            }
            LatchDecision::Accept => None,
            LatchDecision::Latched(to) => {
                info!(%to, "RTP source latched");
                Some(to)
            }
        };
        self.liveness.packet(now);
        if is_event {
            if let Some(r) = self.rfc4733.as_mut()
                && let Some(d) = r.handle_event(now, rtp.ssrc(), rtp.timestamp(), rtp.payload())
            {
                self.digits.push(d);
            }
        } else {
            let arrival = now.saturating_duration_since(self.t_ref).as_secs_f64()
                * f64::from(self.media.codec.clock_rate);
            self.stats.packet(
                rtp.ssrc(),
                rtp.sequence_number().into(),
                rtp.timestamp(),
                arrival as u64 as u32,
            );
            if let Some((decoder, detector)) = self.inband.as_mut() {
                self.pcm.clear();
                if decoder.decode_into(rtp.payload(), &mut self.pcm).is_ok() {
                    detector.process(&self.pcm, &mut self.digits);
                }
            }
        }
        moved.filter(|_| self.media.direction.sends())
    }

    fn next_wake(&self) -> Instant {
        let mut at = self.next_report;
        if let Some(t) = self.rfc4733.as_ref().and_then(|r| r.poll_timeout()) {
            at = at.min(t);
        }
        if !self.timed_out
            && let Some(t) = self.liveness.poll_timeout()
        {
            at = at.min(t);
        }
        at
    }

    /// Timers: DTMF end timeouts, the RTP timeout, and an RTCP report when one is due.
    fn timers(&mut self, now: Instant, counters: &SendCounters) -> (bool, Option<Vec<u8>>) {
        if let Some(r) = self.rfc4733.as_mut() {
            r.handle_timeout(now);
        }
        let mut dead = false;
        if !self.timed_out && self.liveness.expired(now) {
            self.timed_out = true;
            dead = true;
        }
        let mut report = None;
        if now >= self.next_report {
            self.next_report = now + rtcp::report_interval(rand::random());
            report = Some(self.report(now, counters));
        }
        (dead, report)
    }

    /// A compound report now: an SR if we sent since the last one, else an RR.
    fn report(&mut self, now: Instant, counters: &SendCounters) -> Vec<u8> {
        let packets = counters.packets.load(Ordering::Relaxed);
        let sent = (packets != self.packets_at_last_report).then(|| SenderInfo {
            packets,
            octets: counters.octets.load(Ordering::Relaxed),
            rtp_timestamp: counters.last_timestamp.load(Ordering::Relaxed),
        });
        self.packets_at_last_report = packets;
        rtcp::build_report(now, rtcp::ntp_now(), self.ssrc, sent, &mut self.stats, &self.cname)
    }

    /// The last report, closed by a BYE: our stream ends.
    fn bye(&mut self, now: Instant, counters: &SendCounters) -> Vec<u8> {
        let mut packet = self.report(now, counters);
        rtcp::append_bye(&mut packet, self.ssrc);
        packet
    }

    /// Where RTCP goes: where the peer's RTCP comes from, else the RTP target's port + 1.
    fn rtcp_target(&self) -> Option<SocketAddr> {
        let rtp = self.latch.target()?;
        match self.rtcp_source {
            Some(src) if src.ip() == rtp.ip() => Some(src),
            _ => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
        }
    }
}

async fn receive_loop(
    mut rx: Receiver,
    sockets: Arc<RtpSockets>,
    stream: StreamHandle,
    counters: Arc<SendCounters>,
    mut negotiated: watch::Receiver<Negotiated>,
    events: mpsc::Sender<MediaEvent>,
    mut ended: oneshot::Receiver<()>,
) {
    let mut rtp_buf = vec![0u8; MAX_RTP_BYTES];
    let mut rtcp_buf = vec![0u8; rtcp::MAX_RTCP_BYTES];
    let mut negotiation_open = true;
    loop {
        let wake = tokio::time::Instant::from_std(rx.next_wake());
        tokio::select! {
            end = &mut ended => {
                if let (Ok(()), Some(to)) = (end, rx.rtcp_target()) {
                    let bye = rx.bye(Instant::now(), &counters);
                    if let Err(err) = sockets.rtcp.send_to(&bye, to).await {
                        debug!(%err, %to, "RTCP BYE send failed");
                    }
                }
                return;
            }
            got = sockets.rtp.recv_from(&mut rtp_buf) => {
                let Ok((len, source)) = got else { continue };
                let packet = rtp_buf.get(..len).unwrap_or_default();
                if let Some(target) = rx.rtp(Instant::now(), source, packet) {
                    stream.send(Command::Target(stream.id, Some(target)));
                }
            }
            got = sockets.rtcp.recv_from(&mut rtcp_buf) => {
                let Ok((len, source)) = got else { continue };
                if rx.stats.handle_rtcp(Instant::now(), rtcp_buf.get(..len).unwrap_or_default()) > 0 {
                    rx.rtcp_source = Some(source);
                }
            }
            changed = negotiated.changed(), if negotiation_open => {
                if changed.is_err() {
                    negotiation_open = false;
                    continue;
                }
                let media = *negotiated.borrow_and_update();
                rx.renegotiated(Instant::now(), media);
                stream.send(Command::Target(stream.id, rx.send_target()));
            }
            () = tokio::time::sleep_until(wake) => {
                let (dead, report) = rx.timers(Instant::now(), &counters);
                if dead {
                    info!("no RTP within the timeout while not on hold");
                    let _ = events.try_send(MediaEvent::RtpTimeout);
                }
                if let (Some(report), Some(to)) = (report, rx.rtcp_target())
                    && let Err(err) = sockets.rtcp.send_to(&report, to).await
                {
                    debug!(%err, %to, "RTCP send failed");
                }
            }
        }
        for d in rx.digits.drain(..) {
            info!(digit = %d.digit, source = ?d.source, "DTMF digit");
            if events.try_send(MediaEvent::Digit(d)).is_err() {
                warn!("digit queue full; digit dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::DigitSource;
    use crate::sdp::{Codec, Direction};

    fn negotiated(te: Option<u8>) -> Negotiated {
        Negotiated {
            codec: Codec { name: CodecName::Pcmu, payload_type: 0, clock_rate: 8000, channels: 1 },
            telephone_event: te,
            remote_rtp: Some("127.0.0.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            ptime_ms: 20,
        }
    }

    fn settings() -> SessionSettings {
        SessionSettings { rtp_timeout: Duration::from_secs(2), cname: "ivr@test".into() }
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8], marker: bool) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(seq.into())
            .timestamp(ts)
            .ssrc(ssrc)
            .marked(marker)
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn telephone_events_become_digits_and_foreign_payload_types_are_dropped() {
        let t0 = Instant::now();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(rx.rtp(t0, src, &packet(96, 1, 0, 9, &[5, 10, 0, 160], true)), None);
        assert!(rx.digits.is_empty(), "PT 96 was not negotiated");
        assert_eq!(rx.rtp(t0, src, &packet(101, 2, 0, 9, &[5, 10, 0, 160], true)), Some(src));
        assert_eq!(rx.digits.len(), 1);
        assert_eq!(rx.digits[0].digit, '5');
        assert_eq!(rx.digits[0].source, DigitSource::Rfc4733);
        assert!(rx.inband.is_none(), "no in-band detection with telephone-event");
    }

    #[test]
    fn inband_detection_without_telephone_event() {
        let t0 = Instant::now();
        let mut rx = Receiver::new(t0, &negotiated(None), &settings(), 1, CodecName::Pcmu).unwrap();
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let tone = dtmf::inband::synthesize('7', -10.0, 0.0, 160 * 10).unwrap();
        let silence = vec![0i16; 160 * 10];
        for (i, chunk) in tone.chunks(160).chain(silence.chunks(160)).enumerate() {
            let mut enc = Encoder::new(CodecName::Pcmu).unwrap();
            let frame = enc.encode(chunk).unwrap();
            let now = t0 + Duration::from_millis(20 * i as u64);
            rx.rtp(now, src, &packet(0, i as u16, 160 * i as u32, 3, &frame.payload, i == 0));
        }
        let digits: Vec<char> = rx.digits.iter().map(|d| d.digit).collect();
        assert_eq!(digits, vec!['7']);
        assert_eq!(rx.stats.received(), 20);
    }

    #[test]
    fn rtp_timeout_fires_once_and_not_on_hold() {
        let t0 = Instant::now();
        let counters = SendCounters::default();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        assert_eq!(rx.next_wake(), t0 + Duration::from_secs(2));
        assert!(!rx.timers(t0 + Duration::from_millis(1999), &counters).0);
        assert!(rx.timers(t0 + Duration::from_secs(2), &counters).0);
        assert!(!rx.timers(t0 + Duration::from_secs(3), &counters).0, "reported once");

        let mut held =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        let mut m = negotiated(Some(101));
        m.direction = Direction::RecvOnly;
        held.renegotiated(t0, m);
        assert!(!held.timers(t0 + Duration::from_secs(60), &counters).0);
        assert_eq!(held.send_target(), None, "on hold by sendonly we do not send");
    }

    #[test]
    fn rtcp_report_every_interval_sr_only_after_sending() {
        let t0 = Instant::now();
        let counters = SendCounters::default();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 7, CodecName::Pcmu).unwrap();
        // Intervals are randomised within 2.5-7.5 s.
        assert!(rx.timers(t0 + Duration::from_millis(2499), &counters).1.is_none());
        let first = t0 + rtcp::report_interval(1.0);
        let rr = rx.timers(first, &counters).1.unwrap();
        assert_eq!(rr[1], 201, "nothing sent yet: RR");
        assert!(rx.timers(first + Duration::from_millis(2499), &counters).1.is_none());
        counters.packets.store(250, Ordering::Relaxed);
        let sr = rx.timers(first + rtcp::report_interval(1.0), &counters).1.unwrap();
        assert_eq!(sr[1], 200, "SR after sending");
        assert_eq!(rx.rtcp_target(), Some("127.0.0.1:4001".parse().unwrap()));
        // The last packet: a report closed by a BYE for our SSRC.
        counters.packets.store(300, Ordering::Relaxed);
        let bye = rx.bye(first, &counters);
        assert_eq!(bye[1], 200, "still a compound packet led by a report");
        assert_eq!(bye[bye.len() - 7], 203, "BYE");
        assert_eq!(bye[bye.len() - 4..], 7u32.to_be_bytes());
    }
}

//! One call's RTP (runtime layer): a stream on a media worker, which sends the call's RTP
//! and reads what the caller sends.
//!
//! Sending: random SSRC, sequence and timestamp origin (with SRTP the first sequence number
//! is below 2^15, see [`first_sequence`]); the worker's pacer sets timestamps and the
//! playback sets the marker bit (see [`crate::media::worker`]).
//!
//! Receiving: the worker feeds the call's RTP and RTCP datagrams to its
//! [`Receiver`](crate::media::receive) (latching, RTCP statistics, RFC 4733 and in-band
//! DTMF, RTP timeout, RTCP reports). It reads the sockets once per 20 ms frame, right
//! after the frame's send, so a packet waits at most one frame (20 ms) before it is read:
//! a digit, and the barge-in it causes, come up to 20 ms later than on arrival. SIP INFO
//! digits come through [`MediaSession::sip_info`]. All three kinds of digit become
//! [`MediaEvent::Digit`]; with no RTP for `rtp_timeout` while not on hold,
//! [`MediaEvent::RtpTimeout`] tells the call to hang up.
//!
//! Dropping the session ends the stream: the worker sends an RTCP BYE and lets go of the
//! sockets, and the RTP ports go back to the pool.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::CodecName;
use crate::media::bridge::StreamState;
use crate::media::codec::{CodecInfo, Encoder};
use crate::media::dtmf::{self, DigitEvent};
use crate::media::playback::{Finished, PlayMode, PlayRequest, PlaybackId, StopReason};
use crate::media::prompt::Prompt;
use crate::media::receive::Receiver;
use crate::media::rtp_ports::RtpSockets;
use crate::media::worker::{Command, MediaWorkers, SendCounters, StreamHandle, StreamSetup};
use crate::sdp::Negotiated;

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
    received: mpsc::Receiver<MediaEvent>,
    finished: mpsc::UnboundedReceiver<Finished>,
    /// Set by [`MediaSession::detach`]: the stream goes on elsewhere, so no RTCP BYE.
    detached: bool,
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

/// The sequence number of a stream's first packet: random (RFC 3550 §5.1). With SRTP it is
/// below 2^15, as libSRTP advises: a receiver estimates the rollover counter from the
/// first sequence number it sees (RFC 3711 Appendix A), and from a start near 2^16 one that
/// misses our first packets would take the wrap that follows for ROC 0 and lose sync.
fn first_sequence(srtp: bool, rng: &mut impl rand::Rng) -> u16 {
    let seq: u16 = rng.random();
    if srtp { seq & 0x7fff } else { seq }
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
        let next_seq = first_sequence(media.srtp.is_some(), &mut rand::rng());
        let origin = StreamState { ssrc, next_seq, next_ts: rand::random() };
        let samples_per_frame = codec.timestamp_increment();
        let (events, received) = mpsc::channel(EVENT_QUEUE);
        let receiver = Receiver::new(Instant::now(), media, &settings, ssrc, codec)?;
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
            receiver,
            events,
            srtp: media.srtp.clone(),
        });
        Ok(MediaSession {
            stream,
            codec,
            received,
            finished,
            detached: false,
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
    /// or read on its sockets.
    pub async fn detach(mut self) -> DetachedMedia {
        self.detached = true;
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
        self.stream.send(Command::Update(self.stream.id, media.clone()));
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
    /// The call is over: the worker sends an RTCP BYE and drops the stream (letting go of
    /// the sockets). After [`MediaSession::detach`] the stream goes on elsewhere, so no BYE.
    fn drop(&mut self) {
        if !self.detached {
            self.stream.send(Command::End(self.stream.id));
        }
    }
}

#[cfg(test)]
mod first_sequence_tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::first_sequence;

    #[test]
    fn with_srtp_the_first_sequence_number_is_below_2_15() {
        let mut rng = StdRng::seed_from_u64(1);
        let srtp: Vec<u16> = (0..2000).map(|_| first_sequence(true, &mut rng)).collect();
        assert!(srtp.iter().all(|s| *s < 0x8000));
        assert!(srtp.iter().any(|s| *s >= 0x4000), "still random over the lower half");
        let plain: Vec<u16> = (0..2000).map(|_| first_sequence(false, &mut rng)).collect();
        assert!(plain.iter().any(|s| *s >= 0x8000), "plain RTP keeps the whole range");
    }
}

//! The media engine (runtime layer): a few worker threads, each driving the outgoing RTP of
//! many calls from one [`Pacer`] tick — never a timer per call.
//!
//! Each worker is a plain OS thread that sleeps until the pacer's next deadline (or a
//! command), then, for every stream due, writes a 12-byte RTP header in front of a frame
//! that was encoded once and is shared by every call (`Prompt = Arc<[Frame]>`), and sends
//! it. A thread rather than a tokio task because the OS sleeps with tens of microseconds of
//! precision where tokio's timer wheel has one millisecond.
//!
//! Each call sends from its own RTP socket (symmetric RTP needs the packets to leave from
//! the port we advertised), so `sendmmsg`, which batches one socket's datagrams, has
//! nothing to batch. Instead each tick's packets, across all of the worker's calls, go to
//! the kernel in one io_uring submission ([`crate::media::batch_send`], `media.batched_send`);
//! where io_uring is off or not allowed, each packet is one `sendto`.
//!
//! The worker also reads what its calls receive. After a tick's sends have gone out, it
//! reads the sockets of each stream it just sent on, without waiting: one `recvmmsg` per
//! socket returns every datagram waiting there ([`crate::media::recv_batch`]; at most
//! [`MAX_READS_PER_POLL`] per poll). The RTP socket is read every frame, the RTCP socket
//! every [`RTCP_READ_FRAMES`] frames. The datagrams, dated by the kernel's arrival
//! stamps, go to the stream's receiver ([`crate::media::receive`]), and its timers run.
//! A packet therefore waits at most one frame (20 ms) in the socket, but the RTCP jitter
//! and DLSR are measured from its arrival. Digits and the RTP timeout reach the call
//! through its bounded event channel. Reading here costs no task wake-up and no epoll
//! event per packet: the sockets are registered with no reactor.
//!
//! With SRTP (SDES), each packet is encrypted and tagged in the send buffer after its
//! header and the shared frame are written there ([`crate::media::srtp_stream`]); the
//! frame itself stays shared. What is read is authenticated and decrypted in the read
//! buffer before the receiver sees it; a packet that fails is dropped and counted, so it
//! neither plays nor moves the latch.
//!
//! Metrics: `rtp_packets_sent_total`, `rtp_frames_skipped_total` (late frames skipped
//! after a stall), `rtp_send_errors_total`, `media_tick_late_seconds` (how late each
//! tick woke), gauge `media_streams`.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use socket2::SockAddr;
use tokio::sync::mpsc as tokio_mpsc;
use tracing::{debug, info, warn};

use crate::media::batch_send::{BatchSender, Flushed};
use crate::media::codec::Frame;
use crate::media::pacer::{DEFAULT_PERIOD, Due, Pacer};
use crate::media::playback::{Finished, PlayRequest, PlaybackId, Player, StopReason};
use crate::media::receive::{MAX_RTP_BYTES, Receiver};
use crate::media::recv_batch::{Datagrams, SLOTS};
use crate::media::rtcp;
use crate::media::rtp_ports::RtpSockets;
use crate::media::session::MediaEvent;
use crate::media::srtp_stream::{Kind, SrtpStream};
use crate::sdp::Negotiated;
use crate::srtp::SrtpKeys;

/// Identifies one outgoing stream on the engine.
pub type StreamId = u64;

/// Streams start on this grid (from the worker's start), so many streams share each
/// wake-up: at most 20 distinct deadlines per 20 ms, however many calls there are.
pub const TICK_GRID: Duration = Duration::from_millis(1);

/// Largest RTP packet built (header + an Opus frame of at most 1275 bytes).
const MAX_PACKET: usize = 1500;

/// The RTCP socket is read every this many frames (100 ms): reports come every ~5 s, and
/// their arrival stamps keep the DLSR exact however late they are read.
pub const RTCP_READ_FRAMES: u32 = 5;

/// Most datagrams read from one socket per poll (a multiple of [`SLOTS`], the datagrams
/// one `recvmmsg` returns). One or two arrive in a normal frame (audio, telephone events),
/// more in a burst after jitter; a flood beyond this waits, and the kernel drops what
/// overflows the socket buffer, so one call cannot hold up the others.
pub const MAX_READS_PER_POLL: usize = 32;

/// Counters of what a stream sent, read by the session for RTCP sender reports.
#[derive(Debug, Default)]
pub struct SendCounters {
    pub packets: AtomicU32,
    pub octets: AtomicU32,
    pub last_timestamp: AtomicU32,
}

/// Everything a worker needs to send and receive one call's RTP.
pub(crate) struct StreamSetup {
    pub sockets: Arc<RtpSockets>,
    pub payload_type: u8,
    pub ssrc: u32,
    pub first_sequence: u16,
    pub first_timestamp: u32,
    /// RTP timestamp step per frame.
    pub samples_per_frame: u32,
    /// Encoded silence, sent when nothing plays.
    pub silence: Frame,
    /// Where playbacks that end are reported.
    pub finished: tokio_mpsc::UnboundedSender<Finished>,
    pub counters: Arc<SendCounters>,
    /// The receive side, fed from the sockets.
    pub receiver: Receiver,
    /// Where digits and the RTP timeout go (bounded; full drops the event).
    pub events: tokio_mpsc::Sender<MediaEvent>,
    /// SRTP keys, when the call's stream is RTP/SAVP.
    pub srtp: Option<SrtpKeys>,
}

pub(crate) enum Command {
    Add(StreamId, Box<StreamSetup>),
    /// Drops the stream without a word to the peer (its sockets go on elsewhere).
    Remove(StreamId),
    /// The call is over: sends an RTCP BYE, then drops the stream.
    End(StreamId),
    /// A re-INVITE or UPDATE changed the media (hold, unhold, new address).
    Update(StreamId, Negotiated),
    Play(StreamId, PlayRequest),
    Stop(StreamId, Option<PlaybackId>, StopReason),
}

struct Stream {
    setup: StreamSetup,
    target: Option<SockAddr>,
    player: Player,
    sequence: u16,
    /// Frames since the RTCP socket was last read.
    frames_since_rtcp: u32,
    srtp: Option<SrtpStream>,
}

/// A handle on the engine's workers; cheap to clone.
#[derive(Clone)]
pub struct MediaWorkers {
    inner: Arc<Inner>,
}

struct Inner {
    workers: Vec<mpsc::Sender<Command>>,
    next_stream: AtomicU64,
    next_worker: AtomicUsize,
}

/// Where one stream lives: its id and its worker's command channel.
#[derive(Clone)]
pub(crate) struct StreamHandle {
    pub id: StreamId,
    tx: mpsc::Sender<Command>,
}

impl StreamHandle {
    pub(crate) fn send(&self, command: Command) {
        if self.tx.send(command).is_err() {
            warn!(stream = self.id, "media worker has stopped");
        }
    }
}

impl MediaWorkers {
    /// Starts `count` worker threads (0: one per available core); with `batched`, each
    /// sends its tick's packets in one batch where the platform allows it.
    pub fn start(count: usize, batched: bool) -> std::io::Result<MediaWorkers> {
        let count = match count {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
        .min(64);
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || run_worker(rx, batched))?;
            workers.push(tx);
        }
        Ok(MediaWorkers {
            inner: Arc::new(Inner {
                workers,
                next_stream: AtomicU64::new(1),
                next_worker: AtomicUsize::new(0),
            }),
        })
    }

    /// Number of worker threads.
    pub fn len(&self) -> usize {
        self.inner.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.workers.is_empty()
    }

    /// Schedules a new stream on the next worker (round-robin). It sends nothing until
    /// a target is set.
    pub(crate) fn add(&self, setup: StreamSetup) -> StreamHandle {
        let id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let index = self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % self.len().max(1);
        let tx = self.inner.workers[index].clone();
        let handle = StreamHandle { id, tx };
        handle.send(Command::Add(id, Box::new(setup)));
        handle
    }
}

/// The first grid point at or after `now` (`epoch + k·grid`).
pub fn align_to_grid(epoch: Instant, now: Instant, grid: Duration) -> Instant {
    let grid_ns = grid.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let k = since.div_ceil(grid_ns);
    let offset = u64::try_from(k.saturating_mul(grid_ns)).unwrap_or(u64::MAX);
    epoch + Duration::from_nanos(offset)
}

fn run_worker(rx: mpsc::Receiver<Command>, batched: bool) {
    let epoch = Instant::now();
    let mut batch = BatchSender::new(batched);
    let mut pacer: Pacer<StreamId> = Pacer::new();
    let mut streams: HashMap<StreamId, Stream> = HashMap::new();
    let mut due: Vec<Due<StreamId>> = Vec::new();
    let mut buf = vec![0u8; MAX_PACKET];
    let mut received = Datagrams::new(MAX_RTP_BYTES.max(rtcp::MAX_RTCP_BYTES));
    loop {
        // Sleep until the next deadline or a command.
        let command = match pacer.next_deadline() {
            None => match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => return,
            },
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    None
                } else {
                    match rx.recv_timeout(wait) {
                        Ok(c) => Some(c),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        };
        if let Some(command) = command {
            apply(epoch, command, &mut pacer, &mut streams);
            while let Ok(more) = rx.try_recv() {
                apply(epoch, more, &mut pacer, &mut streams);
            }
        }
        let now = Instant::now();
        if pacer.next_deadline().is_none_or(|d| d > now) {
            continue;
        }
        let late = pacer.next_deadline().map(|d| now.saturating_duration_since(d));
        if let Some(late) = late {
            metrics::histogram!("media_tick_late_seconds").record(late.as_secs_f64());
        }
        due.clear();
        pacer.poll(now, &mut due);
        if late.is_some_and(|l| l > Duration::from_millis(1)) {
            metrics::counter!("rtp_frames_late_total").increment(due.len() as u64);
        }
        let (mut skipped, mut errors) = (0u64, 0u64);
        let mut flushed = Flushed::default();
        for d in &due {
            let Some(stream) = streams.get_mut(&d.stream) else { continue };
            skipped += d.skipped;
            match send_one(stream, d, &mut buf, &mut batch) {
                Ok(more) => flushed.add(more),
                Err(err) => {
                    errors += 1;
                    debug!(stream = d.stream, %err, "RTP packet not built");
                }
            }
        }
        flushed.add(batch.flush());
        let (sent, errors) = (flushed.sent, errors + flushed.errors);
        metrics::counter!("rtp_packets_sent_total").increment(sent);
        metrics::counter!("rtp_send_syscalls_total").increment(flushed.syscalls);
        if skipped > 0 {
            metrics::counter!("rtp_frames_skipped_total").increment(skipped);
        }
        if errors > 0 {
            metrics::counter!("rtp_send_errors_total").increment(errors);
        }
        // Receive after the sends, so reading never delays a frame.
        let now = Instant::now();
        for d in &due {
            if let Some(stream) = streams.get_mut(&d.stream) {
                receive(stream, now, &mut received);
            }
        }
    }
}

fn apply(
    epoch: Instant,
    command: Command,
    pacer: &mut Pacer<StreamId>,
    streams: &mut HashMap<StreamId, Stream>,
) {
    match command {
        Command::Add(id, setup) => {
            let mut setup = *setup;
            let t0 = align_to_grid(epoch, Instant::now(), TICK_GRID);
            if pacer
                .add(id, t0, DEFAULT_PERIOD, setup.first_timestamp, setup.samples_per_frame)
                .is_ok()
            {
                let player = Player::new(setup.silence.clone());
                let sequence = setup.first_sequence;
                let target = setup.receiver.send_target().map(SockAddr::from);
                let srtp = setup.srtp.take().map(SrtpStream::new);
                let stream = Stream { setup, target, player, sequence, frames_since_rtcp: 0, srtp };
                streams.insert(id, stream);
                metrics::gauge!("media_streams").increment(1.0);
            }
        }
        Command::Remove(id) => {
            pacer.remove(id);
            if streams.remove(&id).is_some() {
                metrics::gauge!("media_streams").decrement(1.0);
            }
        }
        Command::End(id) => {
            pacer.remove(id);
            if let Some(mut s) = streams.remove(&id) {
                metrics::gauge!("media_streams").decrement(1.0);
                let bye = s.setup.receiver.bye(Instant::now(), &s.setup.counters);
                send_rtcp(&mut s, &bye);
            }
        }
        Command::Update(id, media) => {
            if let Some(s) = streams.get_mut(&id) {
                // The dialog layer keeps a call on SRTP or off it for its whole life.
                if let (Some(srtp), Some(keys)) = (s.srtp.as_mut(), media.srtp.clone()) {
                    srtp.rekey(keys);
                }
                s.setup.receiver.renegotiated(Instant::now(), media);
                s.target = s.setup.receiver.send_target().map(SockAddr::from);
            }
        }
        Command::Play(id, request) => {
            if let Some(s) = streams.get_mut(&id)
                && let Some(old) = s.player.play(request)
            {
                let _ = s.setup.finished.send(old);
            }
        }
        Command::Stop(id, playback, reason) => {
            if let Some(s) = streams.get_mut(&id)
                && let Some(done) = s.player.stop(playback, reason)
            {
                let _ = s.setup.finished.send(done);
            }
        }
    }
}

/// Builds one packet and queues it in `batch` (which may flush when full; that flush's
/// result is returned). Nothing is queued when the stream has nowhere to send.
fn send_one(
    stream: &mut Stream,
    due: &Due<StreamId>,
    buf: &mut [u8],
    batch: &mut BatchSender,
) -> std::io::Result<Flushed> {
    let out = stream.player.next(due.skipped.saturating_add(1));
    if let Some(done) = out.finished {
        let _ = stream.setup.finished.send(done);
    }
    let Some(target) = stream.target.as_ref() else {
        return Ok(Flushed::default());
    };
    let payload = out.frame.payload.as_ref();
    let len = rtp_rs::RtpPacketBuilder::new()
        .payload_type(stream.setup.payload_type)
        .ssrc(stream.setup.ssrc)
        .sequence(rtp_rs::Seq::from(stream.sequence))
        .timestamp(due.timestamp)
        .marked(out.marker)
        .payload(payload)
        .build_into(buf)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let len = match stream.srtp.as_mut() {
        Some(srtp) => srtp.protect_rtp(buf, len).map_err(std::io::Error::other)?,
        None => len,
    };
    stream.sequence = stream.sequence.wrapping_add(1);
    let packet = buf.get(..len).unwrap_or_default();
    let flushed = batch.push(&stream.setup.sockets.rtp, target, packet);
    let c = &stream.setup.counters;
    c.packets.fetch_add(1, Ordering::Relaxed);
    c.octets.fetch_add(payload.len() as u32, Ordering::Relaxed);
    c.last_timestamp.store(due.timestamp, Ordering::Relaxed);
    Ok(flushed)
}

/// Reads what arrived on the stream's sockets since its last frame, feeds it to its
/// receiver, runs the receiver's timers, and passes digits and the RTP timeout on.
fn receive(stream: &mut Stream, now: Instant, datagrams: &mut Datagrams) {
    let sockets = &stream.setup.sockets;
    let rx = &mut stream.setup.receiver;
    for _ in 0..MAX_READS_PER_POLL / SLOTS {
        let count = read(&sockets.rtp, now, datagrams);
        for (source, arrival, packet) in datagrams.iter_mut() {
            let packet = match stream.srtp.as_mut() {
                Some(srtp) => match srtp.unprotect(Kind::Rtp, packet) {
                    Some(plain) => plain,
                    None => continue,
                },
                None => packet,
            };
            if let Some(to) = rx.rtp(arrival, source, packet) {
                stream.target = Some(SockAddr::from(to));
            }
        }
        if count < SLOTS {
            break;
        }
    }
    stream.frames_since_rtcp += 1;
    let rtcp_reads = if stream.frames_since_rtcp >= RTCP_READ_FRAMES {
        stream.frames_since_rtcp = 0;
        MAX_READS_PER_POLL / SLOTS
    } else {
        0
    };
    for _ in 0..rtcp_reads {
        let count = read(&sockets.rtcp, now, datagrams);
        for (source, arrival, packet) in datagrams.iter_mut() {
            let packet = match stream.srtp.as_mut() {
                Some(srtp) => match srtp.unprotect(Kind::Rtcp, packet) {
                    Some(plain) => plain,
                    None => continue,
                },
                None => packet,
            };
            rx.rtcp(arrival, source, packet);
        }
        if count < SLOTS {
            break;
        }
    }
    if now >= rx.next_wake() {
        let (dead, report) = rx.timers(now, &stream.setup.counters);
        if dead {
            info!("no RTP within the timeout while not on hold");
            let _ = stream.setup.events.try_send(MediaEvent::RtpTimeout);
        }
        if let Some(report) = report {
            send_rtcp(stream, &report);
        }
    }
    for d in stream.setup.receiver.take_digits() {
        info!(digit = %d.digit, source = ?d.source, "DTMF digit");
        if let Err(tokio_mpsc::error::TrySendError::Full(_)) =
            stream.setup.events.try_send(MediaEvent::Digit(d))
        {
            warn!("digit queue full; digit dropped");
        }
    }
}

/// Reads the datagrams waiting on `socket` (none is an empty read, not an error).
fn read(socket: &UdpSocket, now: Instant, datagrams: &mut Datagrams) -> usize {
    match datagrams.read(socket, now) {
        Ok(count) => count,
        Err(err) => {
            debug!(%err, "RTP socket read failed");
            0
        }
    }
}

/// Sends one RTCP packet to where the peer's RTCP goes (rare: every ~5 s, and the BYE),
/// as SRTCP when the call uses SRTP.
fn send_rtcp(stream: &mut Stream, packet: &[u8]) {
    let Some(to) = stream.setup.receiver.rtcp_target() else { return };
    let protected;
    let packet = match stream.srtp.as_mut() {
        Some(srtp) => match srtp.protect_rtcp(packet) {
            Ok(p) => {
                protected = p;
                protected.as_slice()
            }
            Err(err) => {
                debug!(%err, "RTCP not protected");
                return;
            }
        },
        None => packet,
    };
    if let Err(err) = stream.setup.sockets.rtcp.send_to(packet, to) {
        debug!(%err, %to, "RTCP send failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_aligned_to_the_grid() {
        let epoch = Instant::now();
        let ms = Duration::from_millis(1);
        assert_eq!(align_to_grid(epoch, epoch, ms), epoch);
        assert_eq!(align_to_grid(epoch, epoch + Duration::from_micros(1), ms), epoch + ms);
        assert_eq!(align_to_grid(epoch, epoch + Duration::from_micros(2999), ms), epoch + ms * 3);
        assert_eq!(align_to_grid(epoch, epoch + ms * 7, ms), epoch + ms * 7);
        // Clock readings before the epoch start at the epoch.
        assert_eq!(align_to_grid(epoch + ms, epoch, ms), epoch + ms);
    }
}

//! The test caller's RTP socket (runtime layer): one task sends a packet every 20 ms
//! (silence, or the digits queued) to the far end of the current media, and takes in
//! whatever arrives, for the recording and the statistics.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::rtp::{DigitError, PTIME, Pacing, Receiver, RtpDigit, RtpSender};
use crate::sdp::Negotiated;

enum Control {
    Media(Negotiated),
    Press(char, RtpDigit),
}

/// What the call's media task saw, once it stopped.
#[derive(Debug, Default)]
pub struct Heard {
    pub first_packet_at: Option<Instant>,
    pub packets: u64,
    pub pacing: Pacing,
    /// Decoded audio, 8 kHz mono.
    pub audio: Vec<i16>,
    /// Digits that went out as tones because RFC 4733 was not negotiated.
    pub tone_fallbacks: usize,
}

/// The running media of a test call.
pub struct CallerMedia {
    local: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Heard>,
}

impl CallerMedia {
    /// Binds an RTP socket on `ip` (any free port) and starts the task; nothing is sent
    /// until the media is known.
    pub async fn bind(ip: IpAddr) -> io::Result<CallerMedia> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let (control, control_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(socket, control_rx, stop_rx));
        Ok(CallerMedia { local, control, stop, task })
    }

    /// Where RTP is received (the address offered in SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The current far end's media (the first answer, a change, the REFER target's).
    pub fn set_media(&self, media: Negotiated) {
        let _ = self.control.send(Control::Media(media));
    }

    /// Sends a digit in the stream.
    pub fn press(&self, digit: char, how: RtpDigit) {
        let _ = self.control.send(Control::Press(digit, how));
    }

    /// Stops sending and returns what was heard.
    pub async fn finish(self) -> Heard {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(heard) => heard,
            Err(err) => {
                warn!(%err, "the caller's media task failed");
                Heard::default()
            }
        }
    }
}

async fn run(
    socket: UdpSocket,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut stop: oneshot::Receiver<()>,
) -> Heard {
    let mut sender: Option<RtpSender> = None;
    let mut remote: Option<SocketAddr> = None;
    let mut receiver = Receiver::new();
    let mut tone_fallbacks = 0;
    let mut tick = tokio::time::interval(PTIME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = &mut stop => break,
            command = control.recv() => match command {
                Some(Control::Media(media)) => {
                    receiver.expect(&media);
                    remote = media.remote_rtp;
                    match sender.as_mut() {
                        Some(s) => s.update(&media),
                        None => {
                            sender = RtpSender::new(&media, rand::random(), rand::random(), rand::random());
                            if sender.is_none() {
                                warn!(codec = ?media.codec.name, "no G.711: the caller sends nothing");
                            }
                        }
                    }
                }
                Some(Control::Press(digit, how)) => {
                    let Some(s) = sender.as_mut() else { continue };
                    match s.press(digit, how) {
                        Err(DigitError::NoTelephoneEvent) => {
                            debug!(%digit, "no telephone-event negotiated: sending a tone");
                            tone_fallbacks += 1;
                            let _ = s.press(digit, RtpDigit::Tone);
                        }
                        Err(err) => warn!(%err, "digit not sent"),
                        Ok(()) => {}
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if let (Some(s), Some(to)) = (sender.as_mut(), remote) {
                    let packet = s.next_packet();
                    if let Err(err) = socket.send_to(&packet, to).await {
                        debug!(%err, "RTP not sent");
                    }
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, _from)) => {
                    receiver.packet(Instant::now(), buf.get(..n).unwrap_or_default());
                }
                Err(err) => debug!(%err, "RTP receive error"),
            },
        }
    }
    Heard {
        first_packet_at: receiver.first_packet_at(),
        packets: receiver.packets(),
        pacing: receiver.pacing(),
        audio: receiver.take_audio(),
        tone_fallbacks,
    }
}

/// Writes 8 kHz mono 16-bit audio as a WAV file.
pub fn write_wav(path: &Path, audio: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &sample in audio {
        writer.write_sample(sample)?;
    }
    writer.finalize()
}

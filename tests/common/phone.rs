//! A caller's phone for tests: RTP on a socket the test owns (the SIP side is a SIPp
//! scenario given the port with `-key caller_rtp`). It sends a recognisable PCMU payload
//! every 20 ms to wherever our RTP comes from (symmetric RTP), presses keys by RFC 4733 at
//! given times after the first packet it hears, and records what it hears.

use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// The payload the phone sends (PCMU), recognisable when it comes back.
pub const CALLER_AUDIO: [u8; 160] = [0x55; 160];
/// telephone-event's payload type in the test scenarios' offers.
const EVENT_PT: u8 = 101;

/// One RTP packet the phone heard.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u16,
    /// Our own audio, come back through an agent's echo.
    pub echo: bool,
    /// Sound, not PCMU silence (every byte near 0xFF or 0x7F).
    pub audible: bool,
}

/// A running phone.
pub struct Phone {
    pub port: u16,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Heard>>,
}

impl Phone {
    /// Binds a socket and starts; `presses` are (time after the first packet heard, key).
    pub async fn start(presses: &[(Duration, char)]) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind the caller's RTP");
        let port = socket.local_addr().expect("address").port();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(socket, presses.to_vec(), stopped));
        Phone { port, stop, task }
    }

    /// Stops and returns what it heard.
    pub async fn stop(self) -> Vec<Heard> {
        let _ = self.stop.send(());
        self.task.await.expect("the phone task")
    }
}

fn audible(payload: &[u8]) -> bool {
    // μ-law: 0xFF and 0x7F are zero; values near them are very quiet.
    payload.iter().filter(|b| (**b & 0x7F) < 0x70).count() > payload.len() / 8
}

fn event(digit: char, end: bool, duration: u16) -> [u8; 4] {
    let code = match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        _ => panic!("not a DTMF key: {digit}"),
    };
    let [hi, lo] = duration.to_be_bytes();
    [code, if end { 0x80 | 10 } else { 10 }, hi, lo]
}

async fn run(
    socket: UdpSocket,
    mut presses: Vec<(Duration, char)>,
    mut stop: oneshot::Receiver<()>,
) -> Vec<Heard> {
    presses.sort_by_key(|(at, _)| *at);
    let mut presses = presses.into_iter().peekable();
    let mut heard = Vec::new();
    let mut remote = None;
    let mut first: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut seq, mut ts) = (1000u16, 0u32);
    // A key in progress: (key, its RTP timestamp, packets sent).
    let mut pressing: Option<(char, u32, u16)> = None;
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = &mut stop => return heard,
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let Some(packet) = buf.get(..n) else { continue };
                let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { continue };
                remote = Some(from);
                first.get_or_insert_with(Instant::now);
                heard.push(Heard {
                    at: Instant::now(),
                    ssrc: rtp.ssrc(),
                    seq: rtp.sequence_number().into(),
                    echo: rtp.payload() == CALLER_AUDIO,
                    audible: audible(rtp.payload()),
                });
            }
            _ = tick.tick() => {
                let Some(to) = remote else { continue };
                if pressing.is_none()
                    && let (Some(since), Some((at, _))) = (first, presses.peek())
                    && since.elapsed() >= *at
                {
                    let (_, key) = presses.next().expect("peeked");
                    pressing = Some((key, ts, 0));
                }
                let (pt, marker, payload, stamp) = match &mut pressing {
                    // 8 packets of 20 ms, then 3 end packets (RFC 4733 §2.5.1.4).
                    Some((key, start, sent)) => {
                        *sent += 1;
                        let end = *sent > 8;
                        let payload = event(*key, end, (*sent).min(8) * 160);
                        let marker = *sent == 1;
                        let stamp = *start;
                        if *sent >= 11 {
                            pressing = None;
                        }
                        (EVENT_PT, marker, payload.to_vec(), stamp)
                    }
                    None => (0, false, CALLER_AUDIO.to_vec(), ts),
                };
                let packet = rtp_rs::RtpPacketBuilder::new()
                    .payload_type(pt)
                    .marked(marker)
                    .ssrc(0xCA11_E500)
                    .sequence(seq.into())
                    .timestamp(stamp)
                    .payload(&payload)
                    .build()
                    .expect("RTP packet");
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                let _ = socket.send_to(&packet, to).await;
            }
        }
    }
}

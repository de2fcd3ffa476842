//! The demo's built-in agent (runtime layer): a SIP endpoint of its own on loopback that
//! answers every call, plays a short prompt ("you are connected to an agent"), then
//! echoes what it hears. It stands in for the queues' targets, so the demo's transfers
//! and target probes (OPTIONS, answered by the UA core) reach something real.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::caller::rtp::PTIME;
use crate::caller::session::local_endpoint;
use crate::media::codec::CodecInfo;
use crate::media::prompt::{self, Prompt};
use crate::sdp::Negotiated;
use crate::sip::dialog::CallEvent;
use crate::sip::endpoint::{Command, EndpointHandle, IncomingCall};

/// Calls the agent takes at once.
const MAX_CALLS: usize = 32;

/// The running agent.
pub struct DemoAgent {
    addr: SocketAddr,
    answered: Arc<AtomicUsize>,
}

impl DemoAgent {
    /// Starts the agent on `ip` (any free port); `greeting` is the WAV it plays first.
    pub async fn start(ip: IpAddr, greeting: Arc<[u8]>) -> io::Result<DemoAgent> {
        let (endpoint, incoming, addr) = local_endpoint(ip, "agent", MAX_CALLS, true).await?;
        let answered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(endpoint, incoming, ip, greeting, answered.clone()));
        info!(%addr, "demo agent listening");
        Ok(DemoAgent { addr, answered })
    }

    /// The agent's URI for a queue `user` (`sip:priority@127.0.0.1:PORT`).
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Calls answered so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

async fn serve(
    endpoint: EndpointHandle,
    mut incoming: mpsc::Receiver<IncomingCall>,
    ip: IpAddr,
    greeting: Arc<[u8]>,
    answered: Arc<AtomicUsize>,
) {
    while let Some(call) = incoming.recv().await {
        let (endpoint, greeting, answered) = (endpoint.clone(), greeting.clone(), answered.clone());
        tokio::spawn(async move {
            if let Err(err) = answer(endpoint, call, ip, greeting, answered).await {
                warn!(%err, "the demo agent's call failed");
            }
        });
    }
}

async fn answer(
    endpoint: EndpointHandle,
    mut call: IncomingCall,
    ip: IpAddr,
    greeting: Arc<[u8]>,
    answered: Arc<AtomicUsize>,
) -> io::Result<()> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    endpoint.send(Command::Accept { call: call.call, local_rtp: socket.local_addr()? });
    let mut media = loop {
        match call.events.recv().await {
            Some(CallEvent::Established { media, .. }) => break media,
            Some(CallEvent::Terminated { .. }) | None => return Ok(()),
            Some(other) => debug!(event = ?other, "agent call event"),
        }
    };
    answered.fetch_add(1, Ordering::Relaxed);
    info!(call_id = %call.call_id, "demo agent answered");
    let codec = media.codec.name;
    let frames: Prompt = tokio::task::spawn_blocking(move || {
        prompt::decode_wav(&greeting, prompt::Limits::default())
            .and_then(|pcm| prompt::encode(&pcm, codec))
    })
    .await
    .map_err(io::Error::other)?
    .map_err(io::Error::other)?;
    let mut out = Outgoing { ssrc: rand::random(), seq: rand::random(), ts: rand::random() };
    let mut next_frame = 0usize;
    let mut tick = tokio::time::interval(PTIME);
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            event = call.events.recv() => match event {
                Some(CallEvent::MediaChanged { media: changed, .. }) => media = changed,
                Some(CallEvent::Terminated { .. }) | None => return Ok(()),
                Some(other) => debug!(event = ?other, "agent call event"),
            },
            _ = tick.tick(), if next_frame < frames.len() => {
                if let (Some(frame), Some(to)) = (frames.get(next_frame), media.remote_rtp) {
                    let packet = out.packet(&media, next_frame == 0, &frame.payload);
                    let _ = socket.send_to(&packet, to).await;
                }
                next_frame += 1;
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = received else { continue };
                // After the greeting, what the caller says comes back.
                if next_frame < frames.len() {
                    continue;
                }
                let Ok(rtp) = rtp_rs::RtpReader::new(buf.get(..n).unwrap_or_default()) else {
                    continue;
                };
                if rtp.payload_type() == media.codec.payload_type
                    && let Some(to) = media.remote_rtp
                {
                    let packet = out.packet(&media, false, rtp.payload());
                    let _ = socket.send_to(&packet, to).await;
                }
            }
        }
    }
}

/// The agent's outgoing stream.
struct Outgoing {
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Outgoing {
    fn packet(&mut self, media: &Negotiated, marker: bool, payload: &[u8]) -> Vec<u8> {
        let packet = rtp_rs::RtpPacketBuilder::new()
            .payload_type(media.codec.payload_type)
            .ssrc(self.ssrc)
            .sequence(rtp_rs::Seq::from(self.seq))
            .timestamp(self.ts)
            .marked(marker)
            .payload(payload)
            .build()
            .unwrap_or_default();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(media.codec.name.timestamp_increment());
        packet
    }
}

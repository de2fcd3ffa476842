//! UDP, TCP and TLS sockets for SIP (the runtime layer). TCP and TLS connections share
//! one stream path (framer, connection table); [`tls`] adds the handshakes.
//!
//! Received bytes are framed and parsed here, on the receiving task, so the SIP core task
//! only ever sees parsed messages. Messages that fail to parse are answered (400/505...)
//! from here when a response can be built, else dropped and logged.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::metric_catalog::RejectReason;
use crate::security_event::{self, SecurityEvent};
use crate::sip::message::{self, Framed, Limits, StreamFramer, Transport};
use crate::sip::tcp_guard::{
    ConnectionCaps, ConnectionPermit, Expiry, ReportThrottle, StreamDeadlines, TcpLimits,
};
use crate::sip::transaction::Peer;

mod failure;
#[cfg(test)]
mod tests;
mod tls;
pub use failure::{SendFailure, SendReport};
pub use tls::{SipTls, TlsError, TlsSettings, reload_on_sighup};

/// How long an outbound TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one TCP connection before sends to it are dropped.
const TCP_QUEUE: usize = 256;

/// A parsed message and where it came from.
#[derive(Debug)]
pub struct Inbound {
    pub message: rsip::SipMessage,
    pub peer: Peer,
}

/// A message queued for a TCP or TLS connection, with whom to tell if it is lost.
struct Outgoing {
    bytes: Bytes,
    report: Option<SendReport>,
}

/// Open TCP and TLS connections by peer (address and transport).
type ConnectionMap = Arc<Mutex<HashMap<Peer, mpsc::Sender<Outgoing>>>>;

/// The SIP sockets: one UDP socket and one TCP listener on the same address, and a TLS
/// listener when configured.
#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: ConnectionMap,
    tls: Option<Arc<SipTls>>,
    limits: Limits,
    inbound: mpsc::Sender<Inbound>,
    local: SocketAddr,
    tcp_limits: TcpLimits,
    caps: ConnectionCaps,
    /// Security events are logged once per interval per kind and source.
    throttle: Arc<Mutex<ReportThrottle<(SecurityEvent, IpAddr)>>>,
}

impl Transports {
    /// Binds UDP and TCP on `listen` (port 0 picks one port free for both) and starts the
    /// receive tasks. Parsed messages go to `inbound`.
    pub async fn bind(
        listen: SocketAddr,
        limits: Limits,
        inbound: mpsc::Sender<Inbound>,
    ) -> io::Result<Transports> {
        Self::bind_with(listen, None, limits, TcpLimits::default(), inbound).await
    }

    /// [`Transports::bind`], plus a TLS listener on `tls`'s own address when given
    /// (see [`Transports::tls_local_addr`]), and the given bounds on inbound stream
    /// (TCP and TLS) connections.
    pub async fn bind_with(
        listen: SocketAddr,
        tls: Option<SipTls>,
        limits: Limits,
        tcp_limits: TcpLimits,
        inbound: mpsc::Sender<Inbound>,
    ) -> io::Result<Transports> {
        let (udp, tcp) = bind_pair(listen).await?;
        let local = udp.local_addr()?;
        let tls_listener = match &tls {
            Some(tls) => Some(tls.bind().await?),
            None => None,
        };
        let tls = tls.map(Arc::new);
        let transports = Transports {
            udp: Arc::new(udp),
            tcp: Arc::default(),
            tls,
            limits,
            inbound,
            local,
            tcp_limits,
            caps: ConnectionCaps::new(&tcp_limits),
            throttle: Arc::new(Mutex::new(ReportThrottle::new(tcp_limits.report_interval))),
        };
        tokio::spawn(transports.clone().udp_loop());
        tokio::spawn(transports.clone().accept_loop(tcp));
        if let Some(listener) = tls_listener {
            tokio::spawn(transports.clone().tls_accept_loop(listener));
        }
        Ok(transports)
    }

    /// The address both transports listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one message. UDP goes out at once; TCP and TLS go over the existing
    /// connection to the peer, or a new one.
    pub async fn send(&self, peer: Peer, bytes: Bytes) {
        self.send_reporting(peer, bytes, None).await;
    }

    /// [`Transports::send`], telling `report` (a client transaction's request) when the
    /// message cannot be delivered: the UDP send fails, the TCP connect is refused or
    /// times out, the TLS handshake or certificate check fails, or the connection's queue
    /// is full or closed or its write fails.
    pub async fn send_reporting(&self, peer: Peer, bytes: Bytes, report: Option<SendReport>) {
        match peer.transport {
            Transport::Udp => {
                if let Err(err) = self.udp.send_to(&bytes, peer.addr).await {
                    debug!(%err, dest = %peer.addr, "UDP send failed");
                    // Only errors that a retransmission would meet again: a full buffer
                    // (ENOBUFS) is left to the retransmissions, as a lost datagram is.
                    if failure::is_fatal_udp(&err) {
                        failure::report(report, peer, format!("UDP send failed: {err}"));
                    }
                }
            }
            Transport::Tcp | Transport::Tls => self.send_stream(peer, Outgoing { bytes, report }),
        }
    }

    fn send_stream(&self, peer: Peer, message: Outgoing) {
        let addr = peer.addr;
        if peer.transport == Transport::Tls && self.tls.is_none() {
            let reason = "SIP over TLS is not configured (sip.tls_listen); message dropped";
            warn!(dest = %addr, "{reason}");
            return failure::report(message.report, peer, reason);
        }
        // One connection per peer: messages sent while it is being opened queue on it.
        let (tx, opening) = {
            let mut map = self.tcp.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get(&peer) {
                // A closed queue: its writer stopped (write failed, or the peer stopped
                // reading), so the connection is opened anew.
                Some(tx) if !tx.is_closed() => (tx.clone(), None),
                _ => {
                    let (tx, rx) = mpsc::channel(TCP_QUEUE);
                    map.insert(peer, tx.clone());
                    (tx, Some(rx))
                }
            }
        };
        if let Err(err) = tx.try_send(message) {
            let reason = "connection queue full or closed; message dropped";
            warn!(dest = %addr, transport = %peer.transport, "{reason}");
            failure::report(err.into_inner().report, peer, reason);
        }
        let Some(queued) = opening else { return };
        let this = self.clone();
        tokio::spawn(async move {
            match this.open(peer).await {
                Ok(Opened::Tcp(stream)) => this.start_connection(stream, peer, None, tx, queued),
                Ok(Opened::Tls(stream)) => this.start_connection(stream, peer, None, tx, queued),
                Err(reason) => {
                    debug!(dest = %addr, %reason, "connection not opened");
                    this.forget(peer, |registered| registered.same_channel(&tx));
                    fail_queued(queued, peer, &reason);
                }
            }
        });
    }

    /// Opens a TCP (and for TLS peers, TLS) connection to `peer`, or says why not.
    async fn open(&self, peer: Peer) -> Result<Opened, String> {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(format!("TCP connect: {err}")),
            Err(_) => return Err("TCP connect timed out".to_string()),
        };
        let _ = tcp.set_nodelay(true);
        match peer.transport {
            Transport::Tls => match self.connect_tls(tcp).await {
                Ok(stream) => Ok(Opened::Tls(Box::new(stream))),
                Err(err) => {
                    warn!(%err, dest = %peer.addr, "TLS connection failed");
                    Err(format!("TLS: {err}"))
                }
            },
            _ => Ok(Opened::Tcp(tcp)),
        }
    }

    async fn udp_loop(self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (len, from) = match self.udp.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(err) => {
                    // ICMP port unreachable from an earlier send surfaces here on Linux.
                    debug!(%err, "UDP receive error");
                    continue;
                }
            };
            let peer = Peer { addr: from, transport: Transport::Udp };
            let data = &buf[..len];
            if data.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
                continue; // keep-alive
            }
            if !self.deliver(data, peer).await {
                return;
            }
        }
    }

    /// Parses and hands a message to the core, or answers/drops it. False once the core
    /// is gone.
    async fn deliver(&self, data: &[u8], peer: Peer) -> bool {
        match message::parse(data, &self.limits) {
            Ok(message) => self.inbound.send(Inbound { message, peer }).await.is_ok(),
            Err(err) => {
                crate::metric_catalog::record_rejected(RejectReason::Malformed);
                match message::error_response(data, &err) {
                    Some(response) => {
                        debug!(%err, from = %peer.addr, "answering a malformed request");
                        let bytes: Vec<u8> = rsip::SipMessage::Response(response).into();
                        self.send(peer, Bytes::from(bytes)).await;
                    }
                    None => debug!(%err, from = %peer.addr, "dropping a malformed message"),
                }
                true
            }
        }
    }

    async fn accept_loop(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => match self.caps.admit(addr.ip()) {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        self.register(
                            stream,
                            Peer { addr, transport: Transport::Tcp },
                            Some(permit),
                        );
                    }
                    Err(cap) => {
                        // Dropping the stream closes it at once.
                        metrics::counter!("sip_tcp_connections_refused_total").increment(1);
                        self.report(SecurityEvent::ConnectionLimit, addr, &cap.to_string());
                    }
                },
                Err(err) => {
                    warn!(%err, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Logs a security event for `addr`, once per interval per source.
    fn report(&self, event: SecurityEvent, addr: SocketAddr, detail: &str) {
        let first = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .should_report(Instant::now(), (event, addr.ip()));
        if first {
            security_event::report(event, addr.ip(), detail);
        }
    }

    /// Starts the reader and writer tasks of a TCP or TLS connection (inbound ones hold
    /// their `permit` until closed); returns its send queue.
    fn register<S>(
        &self,
        stream: S,
        peer: Peer,
        permit: Option<ConnectionPermit>,
    ) -> mpsc::Sender<Outgoing>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        if let Ok(mut map) = self.tcp.lock() {
            map.insert(peer, tx.clone());
        }
        self.start_connection(stream, peer, permit, tx.clone(), rx);
        tx
    }

    /// Starts the reader and writer tasks of a connection whose send queue is `tx`/`rx`
    /// (already in the connection map).
    fn start_connection<S>(
        &self,
        stream: S,
        peer: Peer,
        permit: Option<ConnectionPermit>,
        tx: mpsc::Sender<Outgoing>,
        rx: mpsc::Receiver<Outgoing>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let this = self.clone();
        let pong = tx;
        let reading = tokio::spawn(async move {
            let queue = pong.clone();
            this.read_loop(reader, peer, pong).await;
            this.forget(peer, |registered| registered.same_channel(&queue));
            drop(permit);
            debug!(peer = %peer.addr, transport = %peer.transport, "connection closed");
        });
        let this = self.clone();
        let write_timeout = self.tcp_limits.write_timeout;
        tokio::spawn(async move {
            if let Err(WriterStopped) = write_loop(writer, rx, peer, write_timeout).await {
                // A connection that cannot be written is closed whole (the reader too, and
                // with it the connection's permit), so the next message connects anew.
                reading.abort();
                this.forget(peer, mpsc::Sender::is_closed);
                debug!(peer = %peer.addr, transport = %peer.transport, "connection closed: writer stopped");
            }
        });
    }

    /// Drops `peer`'s entry in the connection map if `is_this` says it is the connection
    /// that ended (a newer connection to the same peer stays).
    fn forget(&self, peer: Peer, is_this: impl Fn(&mpsc::Sender<Outgoing>) -> bool) {
        if let Ok(mut map) = self.tcp.lock()
            && map.get(&peer).is_some_and(is_this)
        {
            map.remove(&peer);
        }
    }

    /// Frames and delivers what a stream brings, until it closes, breaks its framing, or
    /// misses a deadline (idle, or a message not finished in time).
    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
        peer: Peer,
        pong: mpsc::Sender<Outgoing>,
    ) {
        let addr = peer.addr;
        let mut framer = StreamFramer::new(self.limits);
        let mut deadlines = StreamDeadlines::new(Instant::now(), &self.tcp_limits);
        let mut buf = vec![0u8; 16_384];
        loop {
            let wake = tokio::time::Instant::from_std(deadlines.poll_timeout());
            let n = match tokio::time::timeout_at(wake, reader.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => match deadlines.expired(Instant::now()) {
                    Some(Expiry::SlowSender) => {
                        metrics::counter!("sip_tcp_slow_senders_total").increment(1);
                        let detail =
                            format!("{} bytes of an unfinished message", framer.buffered());
                        self.report(SecurityEvent::SlowSender, addr, &detail);
                        return;
                    }
                    Some(Expiry::Idle) => {
                        debug!(peer = %addr, "idle TCP connection closed");
                        return;
                    }
                    None => continue,
                },
            };
            framer.push(&buf[..n]);
            let mut completed = false;
            while let Some(framed) = framer.next_message() {
                match framed {
                    Ok(Framed::Ping) => {
                        let pong_bytes = Bytes::from_static(b"\r\n");
                        let _ = pong.try_send(Outgoing { bytes: pong_bytes, report: None });
                    }
                    Ok(Framed::Message(bytes)) => {
                        completed = true;
                        if !self.deliver(&bytes, peer).await {
                            return;
                        }
                    }
                    Err(err) => {
                        warn!(%err, peer = %addr, transport = %peer.transport, "unusable stream; closing");
                        return;
                    }
                }
            }
            deadlines.on_read(Instant::now(), completed, framer.in_message());
        }
    }
}

/// An outbound connection, opened.
enum Opened {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Reports every message queued on a connection that could not be opened.
fn fail_queued(mut queued: mpsc::Receiver<Outgoing>, peer: Peer, reason: &str) {
    queued.close();
    while let Ok(message) = queued.try_recv() {
        failure::report(message.report, peer, reason);
    }
}

/// The writer of a connection gave up (a write failed or timed out); its queue is closed.
struct WriterStopped;

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: Peer,
    write_timeout: Duration,
) -> Result<(), WriterStopped> {
    while let Some(message) = rx.recv().await {
        // A peer that stops reading must not hold the task and its queue for ever.
        let reason =
            match tokio::time::timeout(write_timeout, writer.write_all(&message.bytes)).await {
                Ok(Ok(())) => continue,
                Ok(Err(err)) => format!("write failed: {err}"),
                Err(_) => {
                    debug!("TCP peer not reading; writer stopped");
                    "peer not reading".to_string()
                }
            };
        // This message and every one queued behind it are lost: say so.
        failure::report(message.report, peer, reason.clone());
        fail_queued(rx, peer, &reason);
        return Err(WriterStopped);
    }
    let _ = writer.shutdown().await;
    Ok(())
}

/// Binds UDP and TCP to the same address. With port 0, retries until one port is free
/// for both.
async fn bind_pair(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(listen).await?;
        let mut addr = udp.local_addr()?;
        addr.set_ip(listen.ip());
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err) if listen.port() == 0 => last_err = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

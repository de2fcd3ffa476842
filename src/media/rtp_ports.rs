//! RTP/RTCP port allocation from `media.rtp_ports` (runtime layer).
//!
//! Even ports carry RTP, the next odd port RTCP. Ports are handed out round-robin so a
//! port just released is not reused at once (late packets of the old call would land in
//! the new one). A port pair is released when its [`RtpSockets`] is dropped.
//!
//! The sockets are plain non-blocking std sockets, not registered with tokio's reactor:
//! the media worker that drives the call polls them itself once per frame, so the kernel
//! wakes no one per packet. The kernel stamps each datagram's arrival, so that a packet
//! read up to a frame late is still dated right. Whoever needs them in async code (the bridge relay) registers
//! a duplicate of the descriptor.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use std::net::UdpSocket;

use tracing::debug;

use crate::media::recv_batch::stamp_arrivals;

#[derive(Debug)]
struct PoolState {
    low: u16,
    high: u16,
    next: u16,
    in_use: HashSet<u16>,
}

/// A pool of RTP port pairs on one IP address.
#[derive(Debug, Clone)]
pub struct RtpPorts {
    /// Where the sockets bind.
    bind_ip: IpAddr,
    /// What the SDP tells peers.
    advertised_ip: IpAddr,
    state: Arc<Mutex<PoolState>>,
}

/// One call's RTP and RTCP sockets. Dropping it returns the ports to the pool.
#[derive(Debug)]
pub struct RtpSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    port: u16,
    pool: RtpPorts,
}

impl RtpSockets {
    pub fn rtp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pool.advertised_ip, self.port)
    }
}

impl Drop for RtpSockets {
    fn drop(&mut self) {
        if let Ok(mut state) = self.pool.state.lock() {
            state.in_use.remove(&self.port);
        }
    }
}

/// Pairs (even RTP port, odd RTCP port) that fit in `low..=high`.
/// RTP/RTCP pairs in `low..=high` (`low` even).
pub fn pair_count(low: u16, high: u16) -> usize {
    (usize::from(high) + 1).saturating_sub(usize::from(low)) / 2
}

impl RtpPorts {
    /// A pool over `low..=high` (rounded inward to even RTP ports), binding on `bind_ip`
    /// and telling peers `advertised_ip`.
    pub fn new(bind_ip: IpAddr, advertised_ip: IpAddr, low: u16, high: u16) -> RtpPorts {
        let low = low + (low % 2);
        RtpPorts {
            bind_ip,
            advertised_ip,
            state: Arc::new(Mutex::new(PoolState { low, high, next: low, in_use: HashSet::new() })),
        }
    }

    /// How many port pairs the range holds.
    pub fn capacity(&self) -> usize {
        self.state.lock().map(|s| pair_count(s.low, s.high)).unwrap_or(0)
    }

    /// Port pairs now in use.
    pub fn in_use(&self) -> usize {
        self.state.lock().map(|s| s.in_use.len()).unwrap_or(0)
    }

    /// Binds the next free pair. Ports another process holds are skipped.
    pub async fn allocate(&self) -> io::Result<RtpSockets> {
        let attempts = self.capacity();
        for _ in 0..attempts {
            let Some(port) = self.reserve() else { break };
            match self.bind_pair(port) {
                Ok((rtp, rtcp)) => return Ok(RtpSockets { rtp, rtcp, port, pool: self.clone() }),
                Err(_) => self.release(port),
            }
        }
        Err(io::Error::new(io::ErrorKind::AddrInUse, "no free RTP port in media.rtp_ports"))
    }

    fn reserve(&self) -> Option<u16> {
        let mut state = self.state.lock().ok()?;
        let count = pair_count(state.low, state.high);
        for _ in 0..count {
            let port = state.next;
            state.next = if port.saturating_add(2) > state.high.saturating_sub(1) {
                state.low
            } else {
                port + 2
            };
            if port < state.high && !state.in_use.contains(&port) {
                state.in_use.insert(port);
                return Some(port);
            }
        }
        None
    }

    fn release(&self, port: u16) {
        if let Ok(mut state) = self.state.lock() {
            state.in_use.remove(&port);
        }
    }

    fn bind_pair(&self, port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
        let bind = |port| -> io::Result<UdpSocket> {
            let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, port))?;
            socket.set_nonblocking(true)?;
            if let Err(err) = stamp_arrivals(&socket) {
                debug!(%err, "no arrival stamps; RTP arrivals are dated when read");
            }
            Ok(socket)
        };
        Ok((bind(port)?, bind(port + 1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn free_range(pairs: u16) -> (u16, u16) {
        // Find a stretch of ports that is free now; the OS picks a base for us.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        let low = (base.saturating_sub(2 * pairs)).max(20_000) & !1;
        (low, low + 2 * pairs - 1)
    }

    #[tokio::test]
    async fn allocates_even_pairs_and_releases_on_drop() {
        let (low, high) = free_range(3);
        let pool = RtpPorts::new(LOCALHOST, LOCALHOST, low, high);
        assert_eq!(pool.capacity(), 3);
        let a = pool.allocate().await.unwrap();
        assert_eq!(a.rtp_addr().port() % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.rtp_addr().port() + 1);
        let b = pool.allocate().await.unwrap();
        assert_ne!(a.rtp_addr(), b.rtp_addr());
        assert_eq!(pool.in_use(), 2);
        drop(a);
        assert_eq!(pool.in_use(), 1);
    }

    #[tokio::test]
    async fn exhausted_pool_is_an_error_not_a_hang() {
        let (low, high) = free_range(1);
        let pool = RtpPorts::new(LOCALHOST, LOCALHOST, low, high);
        let _held = pool.allocate().await.unwrap();
        let err = pool.allocate().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn round_robin_does_not_reuse_a_port_at_once() {
        let (low, high) = free_range(2);
        let pool = RtpPorts::new(LOCALHOST, LOCALHOST, low, high);
        let first = pool.allocate().await.unwrap().rtp_addr().port();
        let second = pool.allocate().await.unwrap().rtp_addr().port();
        assert_ne!(first, second);
    }
}

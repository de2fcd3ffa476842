//! Batched RTP sends for one pacing worker (runtime layer).
//!
//! Every call has its own RTP socket (symmetric-RTP peers expect packets from the port in
//! our SDP), so `sendmmsg`, which batches datagrams of one socket, cannot batch a tick's
//! packets: each call sends one packet per 20 ms. On Linux, io_uring can: all the
//! datagrams due in one tick, each from its own socket, go to the kernel in one
//! submission. Elsewhere, or where io_uring is not allowed (a seccomp policy, or
//! `kernel.io_uring_disabled`), each packet is one `sendto`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use socket2::SockAddr;
use tracing::debug;

/// Most datagrams queued between two flushes (one tick of one worker).
pub const MAX_BATCH: usize = 4096;

/// One datagram waiting for the flush: where its bytes are in the arena.
struct Pending {
    fd: RawFd,
    dest: SockAddr,
    start: usize,
    len: usize,
}

/// Datagrams queued for one flush; their bytes are copied into one arena.
pub struct BatchSender {
    pending: Vec<Pending>,
    arena: Vec<u8>,
    #[cfg(target_os = "linux")]
    ring: Option<io_uring::IoUring>,
}

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: u64,
    pub errors: u64,
    /// System calls made (one per batch with io_uring, one per datagram without).
    pub syscalls: u64,
}

impl Flushed {
    /// Adds another flush's counts to this one.
    pub fn add(&mut self, other: Flushed) {
        self.sent += other.sent;
        self.errors += other.errors;
        self.syscalls += other.syscalls;
    }
}

impl BatchSender {
    /// A sender that batches with io_uring when `batched` and the platform allows it.
    pub fn new(batched: bool) -> BatchSender {
        BatchSender {
            pending: Vec::with_capacity(256),
            arena: Vec::with_capacity(256 * 200),
            #[cfg(target_os = "linux")]
            ring: if batched { ring() } else { None },
        }
    }

    /// Whether sends go out in batches.
    pub fn is_batched(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.ring.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Queues `packet` to go from `socket` to `dest` at the next flush. Past
    /// [`MAX_BATCH`] queued datagrams, the queue is flushed first.
    pub fn push(&mut self, socket: &impl AsRawFd, dest: &SockAddr, packet: &[u8]) -> Flushed {
        let flushed =
            if self.pending.len() >= MAX_BATCH { self.flush() } else { Flushed::default() };
        let start = self.arena.len();
        self.arena.extend_from_slice(packet);
        self.pending.push(Pending {
            fd: socket.as_raw_fd(),
            dest: dest.clone(),
            start,
            len: packet.len(),
        });
        flushed
    }

    /// Sends everything queued. The sockets pushed must still be open.
    pub fn flush(&mut self) -> Flushed {
        let result = self.send_all();
        self.pending.clear();
        self.arena.clear();
        result
    }

    fn send_all(&mut self) -> Flushed {
        if self.pending.is_empty() {
            return Flushed::default();
        }
        #[cfg(target_os = "linux")]
        if let Some(ring) = self.ring.as_mut() {
            match submit(ring, &self.pending, &self.arena) {
                Ok(flushed) => return flushed,
                Err(err) => {
                    // The ring is unusable (e.g. a policy forbids it): fall back for good.
                    debug!(%err, "io_uring send failed; falling back to one sendto per packet");
                    self.ring = None;
                }
            }
        }
        send_each(&self.pending, &self.arena)
    }
}

fn send_each(pending: &[Pending], arena: &[u8]) -> Flushed {
    let mut flushed = Flushed::default();
    for p in pending {
        let bytes = arena.get(p.start..p.start + p.len).unwrap_or_default();
        // SAFETY: `fd` belongs to a socket the caller keeps open until the flush returns
        // (the worker owns the stream that owns it); the borrow lasts for this call only.
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(p.fd) };
        flushed.syscalls += 1;
        match socket2::SockRef::from(&socket).send_to(bytes, &p.dest) {
            Ok(_) => flushed.sent += 1,
            Err(_) => flushed.errors += 1,
        }
    }
    flushed
}

#[cfg(target_os = "linux")]
fn ring() -> Option<io_uring::IoUring> {
    match io_uring::IoUring::new(256) {
        Ok(ring) => Some(ring),
        Err(err) => {
            debug!(%err, "io_uring unavailable; RTP sends are not batched");
            None
        }
    }
}

/// One `sendmsg` entry per datagram, submitted in chunks of the ring's size; waits for
/// every completion before returning, so the buffers outlive the kernel's use of them.
#[cfg(target_os = "linux")]
fn submit(ring: &mut io_uring::IoUring, pending: &[Pending], arena: &[u8]) -> io::Result<Flushed> {
    use io_uring::{opcode, types};

    let mut flushed = Flushed::default();
    let chunk_size = ring.params().sq_entries() as usize;
    for chunk in pending.chunks(chunk_size.max(1)) {
        // Built in full before any entry points into them, so they do not move.
        let mut iovecs: Vec<libc::iovec> = chunk
            .iter()
            .map(|p| {
                let bytes = arena.get(p.start..p.start + p.len).unwrap_or_default();
                libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() }
            })
            .collect();
        let headers: Vec<libc::msghdr> = chunk
            .iter()
            .zip(iovecs.iter_mut())
            .map(|(p, iov)| {
                // SAFETY: msghdr is plain data; an all-zero value is valid.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_name = p.dest.as_ptr() as *mut libc::c_void;
                msg.msg_namelen = p.dest.len();
                msg.msg_iov = iov as *mut libc::iovec;
                msg.msg_iovlen = 1;
                msg
            })
            .collect();
        {
            let mut sq = ring.submission();
            for (i, (p, msg)) in chunk.iter().zip(headers.iter()).enumerate() {
                let entry = opcode::SendMsg::new(types::Fd(p.fd), msg as *const libc::msghdr)
                    .build()
                    .user_data(i as u64);
                // SAFETY: the msghdr, iovec, address and bytes stay alive and unmoved until
                // every completion of this chunk has been reaped below.
                if unsafe { sq.push(&entry) }.is_err() {
                    return Err(io::Error::other("io_uring submission queue full"));
                }
            }
        }
        ring.submit_and_wait(chunk.len())?;
        flushed.syscalls += 1;
        let mut reaped = 0;
        while reaped < chunk.len() {
            let mut cq = ring.completion();
            let mut any = false;
            for cqe in &mut cq {
                any = true;
                reaped += 1;
                if cqe.result() >= 0 {
                    flushed.sent += 1;
                } else {
                    flushed.errors += 1;
                }
            }
            drop(cq);
            if !any && reaped < chunk.len() {
                ring.submit_and_wait(chunk.len() - reaped)?;
                flushed.syscalls += 1;
            }
        }
        drop(headers);
        drop(iovecs);
    }
    Ok(flushed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn pairs(n: usize) -> Vec<(UdpSocket, UdpSocket)> {
        (0..n)
            .map(|_| {
                let from = UdpSocket::bind("127.0.0.1:0").unwrap();
                let to = UdpSocket::bind("127.0.0.1:0").unwrap();
                to.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                (from, to)
            })
            .collect()
    }

    fn each_packet_arrives_from_its_own_socket(batched: bool) -> Flushed {
        let pairs = pairs(300);
        let mut sender = BatchSender::new(batched);
        for (i, (from, to)) in pairs.iter().enumerate() {
            let dest = SockAddr::from(to.local_addr().unwrap());
            sender.push(from, &dest, format!("packet {i}").as_bytes());
        }
        let flushed = sender.flush();
        assert_eq!(flushed.sent, 300);
        assert_eq!(flushed.errors, 0);
        for (i, (from, to)) in pairs.iter().enumerate() {
            let mut buf = [0u8; 64];
            let (n, source) = to.recv_from(&mut buf).expect("the packet arrives");
            assert_eq!(&buf[..n], format!("packet {i}").as_bytes());
            assert_eq!(source, from.local_addr().unwrap(), "sent from the call's own socket");
        }
        flushed
    }

    #[test]
    fn batched_sends_keep_each_source_socket() {
        let flushed = each_packet_arrives_from_its_own_socket(true);
        if BatchSender::new(true).is_batched() {
            // 300 packets in a 256-entry ring: two submissions, not 300 sendto calls.
            assert!(flushed.syscalls <= 4, "{flushed:?}");
        }
    }

    #[test]
    fn unbatched_sends_are_one_call_each() {
        let flushed = each_packet_arrives_from_its_own_socket(false);
        assert_eq!(flushed.syscalls, 300);
    }

    #[test]
    fn a_closed_destination_is_an_error_count_not_a_failure() {
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sender = BatchSender::new(true);
        // Port 0 cannot be sent to.
        let dest = SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        sender.push(&from, &dest, b"x");
        let flushed = sender.flush();
        assert_eq!(flushed.sent + flushed.errors, 1);
        assert_eq!(sender.flush(), Flushed::default(), "the queue is empty after a flush");
    }
}

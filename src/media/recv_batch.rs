//! Reading the datagrams waiting on one socket in one system call (runtime layer).
//!
//! The media worker polls each call's RTP and RTCP sockets once per frame, and most polls
//! find one packet or none. A `recv_from` loop needs a second call just to learn that the
//! socket is empty; `recvmmsg` (Linux) returns every waiting datagram, up to [`SLOTS`], or
//! "would block", in one call. Elsewhere the loop is used.
//!
//! Each datagram comes with its arrival time. A socket read once per frame would otherwise
//! date every packet to the read, up to 20 ms late and in steps of the worker's grid,
//! which would distort the RTCP jitter and DLSR we report. On Linux the kernel stamps each
//! datagram as it arrives (`SO_TIMESTAMPNS`, set by [`stamp_arrivals`]); the stamp, on the
//! wall clock, is turned into an [`Instant`] by its age at the read. Without a stamp, the
//! read's time is used. The kernel turns arrival stamping on for the whole host shortly
//! after the first socket asks for it (a deferred static key); until then a datagram is
//! stamped when it is read, so the first packets after start-up are dated by the read.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most datagrams one read returns.
pub const SLOTS: usize = 8;

/// Oldest arrival stamp believed: an older one means the wall clock stepped (the packet
/// waited one frame at most), and the read's time is used instead.
const MAX_STAMP_AGE: Duration = Duration::from_millis(500);

/// Asks the kernel to stamp each datagram `socket` receives with its arrival time (Linux;
/// elsewhere nothing happens and arrivals are dated by the read).
pub fn stamp_arrivals(socket: &UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;

        let on: libc::c_int = 1;
        // SAFETY: the option value is a c_int that lives for the call, with its size.
        let done = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// One datagram read: its length in its slot, its source, and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Got {
    len: usize,
    source: SocketAddr,
    arrival: Instant,
}

/// Buffers for one read of up to [`SLOTS`] datagrams, and what the last read got.
pub struct Datagrams {
    buffers: Vec<u8>,
    size: usize,
    got: Vec<Got>,
}

impl Datagrams {
    /// Room for [`SLOTS`] datagrams of at most `size` bytes (longer ones are cut).
    pub fn new(size: usize) -> Datagrams {
        Datagrams { buffers: vec![0; SLOTS * size], size, got: Vec::with_capacity(SLOTS) }
    }

    /// Reads what waits on the non-blocking `socket`, at most [`SLOTS`] datagrams, without
    /// waiting. Returns how many were read (zero when none waited). `now` is the time of
    /// the read: no arrival is dated later.
    pub fn read(&mut self, socket: &UdpSocket, now: Instant) -> io::Result<usize> {
        self.got.clear();
        #[cfg(target_os = "linux")]
        return self.read_many(socket, now);
        #[cfg(not(target_os = "linux"))]
        return self.read_each(socket, now);
    }

    /// The datagrams of the last read: where each came from, when it arrived, its bytes.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, Instant, &[u8])> {
        self.got.iter().enumerate().map(|(slot, got)| {
            let start = slot * self.size;
            let bytes = self.buffers.get(start..start + got.len).unwrap_or_default();
            (got.source, got.arrival, bytes)
        })
    }

    /// [`Self::iter`] with the bytes writable (SRTP decrypts them in place).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SocketAddr, Instant, &mut [u8])> {
        let size = self.size;
        self.buffers.chunks_mut(size).zip(self.got.iter()).map(move |(chunk, got)| {
            let len = got.len.min(size);
            (got.source, got.arrival, &mut chunk[..len])
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read_each(&mut self, socket: &UdpSocket, now: Instant) -> io::Result<usize> {
        for buf in self.buffers.chunks_mut(self.size) {
            match socket.recv_from(buf) {
                Ok((len, source)) => self.got.push(Got { len, source, arrival: now }),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if self.got.is_empty() => return Err(err),
                Err(_) => break,
            }
        }
        Ok(self.got.len())
    }

    #[cfg(target_os = "linux")]
    fn read_many(&mut self, socket: &UdpSocket, now: Instant) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain data; all-zero is valid.
        let mut names: [libc::sockaddr_storage; SLOTS] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        // Room for one timespec control message per datagram (u64s keep it aligned).
        let mut controls = [[0u64; 8]; SLOTS];
        let slots = self.buffers.chunks_mut(self.size);
        for ((((buf, iov), name), control), header) in slots
            .zip(iovecs.iter_mut())
            .zip(names.iter_mut())
            .zip(controls.iter_mut())
            .zip(headers.iter_mut())
        {
            *iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            let hdr = &mut header.msg_hdr;
            hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = iov as *mut libc::iovec;
            hdr.msg_iovlen = 1;
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = size_of::<[u64; 8]>() as _;
        }
        // SAFETY: every header points into `names`, `iovecs`, `controls` and
        // `self.buffers`, which live, unmoved, until the call returns; the call writes
        // within the given sizes.
        let count = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                SLOTS as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(err) };
        }
        let count = usize::try_from(count).unwrap_or(0).min(SLOTS);
        // Both clocks read together, so a stamp's age is not stretched by the caller's work.
        let (mono, wall) = (Instant::now(), SystemTime::now());
        let wall = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        for (header, name) in headers.iter().zip(names.iter()).take(count) {
            if let Some(source) = socket_addr(name) {
                let len = (header.msg_len as usize).min(self.size);
                let arrival = stamp(&header.msg_hdr)
                    .and_then(|at| wall.checked_sub(at))
                    .filter(|age| *age <= MAX_STAMP_AGE)
                    .and_then(|age| mono.checked_sub(age))
                    .map_or(now, |at| at.min(now));
                self.got.push(Got { len, source, arrival });
            }
        }
        Ok(count)
    }
}

/// The kernel's arrival stamp of a received message (time since the Unix epoch), if any.
#[cfg(target_os = "linux")]
fn stamp(msg: &libc::msghdr) -> Option<Duration> {
    // SAFETY: `msg` was filled in by recvmmsg: its control buffer and length are valid,
    // and the CMSG macros stay within them.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers from CMSG_FIRSTHDR/CMSG_NXTHDR lie within the buffer.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries a timespec (possibly unaligned).
            let at =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>()) };
            let secs = u64::try_from(at.tv_sec).ok()?;
            let nanos = u32::try_from(at.tv_nsec).ok()?;
            return Some(Duration::new(secs, nanos));
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

/// The address the kernel wrote, if it is IPv4 or IPv6.
#[cfg(target_os = "linux")]
fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    let storage = (name as *const libc::sockaddr_storage).cast::<u8>();
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large enough and aligned for it.
            let a = unsafe { &*storage.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*storage.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        stamp_arrivals(&socket).unwrap();
        socket
    }

    /// Sends `count` datagrams (loopback queues each on the receiver within the send).
    fn send(from: &UdpSocket, to: &UdpSocket, count: usize, tag: &str) {
        for i in 0..count {
            from.send_to(format!("{tag}{i}").as_bytes(), to.local_addr().unwrap()).unwrap();
        }
    }

    #[test]
    fn one_read_returns_every_waiting_datagram_with_its_source() {
        let socket = receiver();
        let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("[::1]:0"));
        send(&a, &socket, 2, "a");
        let mut datagrams = Datagrams::new(64);
        assert_eq!(datagrams.read(&socket, Instant::now()).unwrap(), 2);
        let got: Vec<(SocketAddr, Vec<u8>)> =
            datagrams.iter().map(|(from, _, bytes)| (from, bytes.to_vec())).collect();
        let from = a.local_addr().unwrap();
        assert_eq!(got, vec![(from, b"a0".to_vec()), (from, b"a1".to_vec())]);
        assert_eq!(
            datagrams.read(&socket, Instant::now()).unwrap(),
            0,
            "empty: would block, no error"
        );
        assert_eq!(datagrams.iter().count(), 0);
        // An IPv6 source, where the host has IPv6 loopback.
        if let Ok(b) = b {
            let v6 = UdpSocket::bind("[::1]:0").unwrap();
            v6.set_nonblocking(true).unwrap();
            b.send_to(b"six", v6.local_addr().unwrap()).unwrap();
            assert_eq!(datagrams.read(&v6, Instant::now()).unwrap(), 1);
            let (source, _, bytes) = datagrams.iter().next().unwrap();
            assert_eq!((source, bytes), (b.local_addr().unwrap(), &b"six"[..]));
        }
    }

    #[test]
    fn more_than_the_slots_take_more_reads_and_long_datagrams_are_cut() {
        let socket = receiver();
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        send(&from, &socket, SLOTS + 2, "x");
        let mut datagrams = Datagrams::new(2);
        assert_eq!(datagrams.read(&socket, Instant::now()).unwrap(), SLOTS);
        assert_eq!(datagrams.iter().next().unwrap().2, b"x0");
        assert_eq!(datagrams.read(&socket, Instant::now()).unwrap(), 2);
        assert_eq!(datagrams.iter().last().unwrap().2, format!("x{}", SLOTS + 1).as_bytes());
        assert_eq!(datagrams.read(&socket, Instant::now()).unwrap(), 0);
        from.send_to(b"too long", socket.local_addr().unwrap()).unwrap();
        assert_eq!(datagrams.read(&socket, Instant::now()).unwrap(), 1);
        assert_eq!(datagrams.iter().next().unwrap().2, b"to", "cut to the buffer size");
    }

    #[test]
    fn arrivals_are_dated_by_the_kernel_not_by_the_read() {
        let socket = receiver();
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut datagrams = Datagrams::new(64);
        // Once the kernel has turned stamping on (deferred after the first socket asks),
        // a datagram read 30 ms after it was sent is dated at the send.
        let mut offs = Vec::new();
        for _ in 0..20 {
            let before_send = Instant::now();
            send(&from, &socket, 1, "early");
            let after_send = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            let read_at = Instant::now();
            assert_eq!(datagrams.read(&socket, read_at).unwrap(), 1);
            let (_, arrival, _) = datagrams.iter().next().unwrap();
            assert!(arrival <= read_at);
            if !cfg!(target_os = "linux") {
                return;
            }
            // Dated while it was sent (however long this thread was descheduled around
            // the send), give or take the conversion between the two clocks.
            let slack = Duration::from_millis(2);
            if arrival + slack >= before_send && arrival <= after_send + slack {
                return;
            }
            offs.push(arrival.saturating_duration_since(before_send));
        }
        panic!("never dated at the send; arrivals after the send: {offs:?}");
    }
}

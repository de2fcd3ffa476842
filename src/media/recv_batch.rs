//! Reading the datagrams waiting on one socket in one system call (runtime layer).
//!
//! The media worker polls each call's RTP and RTCP sockets once per frame, and most polls
//! find one packet or none. A `recv_from` loop needs a second call just to learn that the
//! socket is empty; `recvmmsg` (Linux) returns every waiting datagram, up to [`SLOTS`], or
//! "would block", in one call. Elsewhere the loop is used.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most datagrams one read returns.
pub const SLOTS: usize = 8;

/// Buffers for one read of up to [`SLOTS`] datagrams, and what the last read got.
pub struct Datagrams {
    buffers: Vec<u8>,
    size: usize,
    got: Vec<(usize, SocketAddr)>,
}

impl Datagrams {
    /// Room for [`SLOTS`] datagrams of at most `size` bytes (longer ones are cut).
    pub fn new(size: usize) -> Datagrams {
        Datagrams { buffers: vec![0; SLOTS * size], size, got: Vec::with_capacity(SLOTS) }
    }

    /// Reads what waits on the non-blocking `socket`, at most [`SLOTS`] datagrams, without
    /// waiting. Returns how many were read (zero when none waited).
    pub fn read(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        #[cfg(target_os = "linux")]
        return self.read_many(socket);
        #[cfg(not(target_os = "linux"))]
        return self.read_each(socket);
    }

    /// The datagrams of the last read: where each came from, and its bytes.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.got.iter().enumerate().map(|(slot, &(len, source))| {
            let start = slot * self.size;
            (source, self.buffers.get(start..start + len).unwrap_or_default())
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read_each(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for buf in self.buffers.chunks_mut(self.size) {
            match socket.recv_from(buf) {
                Ok(got) => self.got.push(got),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if self.got.is_empty() => return Err(err),
                Err(_) => break,
            }
        }
        Ok(self.got.len())
    }

    #[cfg(target_os = "linux")]
    fn read_many(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain data; all-zero is valid.
        let mut names: [libc::sockaddr_storage; SLOTS] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        let slots = self.buffers.chunks_mut(self.size);
        for (((buf, iov), name), header) in
            slots.zip(iovecs.iter_mut()).zip(names.iter_mut()).zip(headers.iter_mut())
        {
            *iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            header.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iov as *mut libc::iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points into `names`, `iovecs` and `self.buffers`, which
        // live, unmoved, until the call returns; the call writes within the given sizes.
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
        for (header, name) in headers.iter().zip(names.iter()).take(count) {
            if let Some(source) = socket_addr(name) {
                let len = (header.msg_len as usize).min(self.size);
                self.got.push((len, source));
            }
        }
        Ok(count)
    }
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
        assert_eq!(datagrams.read(&socket).unwrap(), 2);
        let got: Vec<(SocketAddr, Vec<u8>)> =
            datagrams.iter().map(|(from, bytes)| (from, bytes.to_vec())).collect();
        let from = a.local_addr().unwrap();
        assert_eq!(got, vec![(from, b"a0".to_vec()), (from, b"a1".to_vec())]);
        assert_eq!(datagrams.read(&socket).unwrap(), 0, "empty: would block, no error");
        assert_eq!(datagrams.iter().count(), 0);
        // An IPv6 source, where the host has IPv6 loopback.
        if let Ok(b) = b {
            let v6 = UdpSocket::bind("[::1]:0").unwrap();
            v6.set_nonblocking(true).unwrap();
            b.send_to(b"six", v6.local_addr().unwrap()).unwrap();
            assert_eq!(datagrams.read(&v6).unwrap(), 1);
            let (source, bytes) = datagrams.iter().next().unwrap();
            assert_eq!((source, bytes), (b.local_addr().unwrap(), &b"six"[..]));
        }
    }

    #[test]
    fn more_than_the_slots_take_more_reads_and_long_datagrams_are_cut() {
        let socket = receiver();
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        send(&from, &socket, SLOTS + 2, "x");
        let mut datagrams = Datagrams::new(2);
        assert_eq!(datagrams.read(&socket).unwrap(), SLOTS);
        assert_eq!(datagrams.iter().next().unwrap().1, b"x0");
        assert_eq!(datagrams.read(&socket).unwrap(), 2);
        assert_eq!(datagrams.iter().last().unwrap().1, format!("x{}", SLOTS + 1).as_bytes());
        assert_eq!(datagrams.read(&socket).unwrap(), 0);
        from.send_to(b"too long", socket.local_addr().unwrap()).unwrap();
        assert_eq!(datagrams.read(&socket).unwrap(), 1);
        assert_eq!(datagrams.iter().next().unwrap().1, b"to", "cut to the buffer size");
    }
}

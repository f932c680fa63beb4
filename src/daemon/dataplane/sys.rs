//! The few raw syscalls the data plane needs that nix does not wrap (or
//! wraps only behind features this crate does not enable).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;

use nix::fcntl::OFlag;

use crate::daemon::state::budget::{PIPES, PIPES_MAX};

/// Segments received and sent on a TCP socket (`TCP_INFO`), or `None`
/// when the kernel does not say.
pub fn tcp_segments(sock: &impl AsRawFd) -> Option<(u64, u64)> {
    let mut info: libc::tcp_info = unsafe {
        // SAFETY: tcp_info is a plain C struct of integers; all-zero is valid.
        std::mem::zeroed()
    };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a valid, writable tcp_info of `len` bytes and the fd
    // is owned by `sock` for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    Some((info.tcpi_segs_in as u64, info.tcpi_segs_out as u64))
}

/// Bytes the kernel has received on TCP socket `sock` (`TCP_INFO`), or
/// None if it cannot tell. Read only when a relay failed, to learn
/// whether the real server had answered at all.
pub(crate) fn tcp_bytes_received(sock: &impl AsRawFd) -> Option<u64> {
    let mut info: libc::tcp_info = unsafe {
        // SAFETY: tcp_info is a plain C struct of integers; all-zero is valid.
        std::mem::zeroed()
    };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: as in `tcp_segments`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // Kernels before 4.1 return a shorter struct without the field.
    let end = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received) + 8;
    (rc == 0 && len as usize >= end).then_some(info.tcpi_bytes_received)
}

/// Give freed heap memory back to the kernel (glibc keeps it otherwise).
/// Called after control-plane work that allocates a lot at once (a large
/// `-R`, a listing of a huge table), never on the data path.
pub(crate) fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has
    // no preconditions and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Shut the sending side of a socket down (pass a FIN on), leaving the
/// receiving side open (half-close).
pub(crate) fn shutdown_write(sock: &impl AsRawFd) -> std::io::Result<()> {
    use nix::sys::socket::{shutdown, Shutdown};
    match shutdown(sock.as_raw_fd(), Shutdown::Write) {
        Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// send(2) with `MSG_MORE`: the kernel holds the data back for what the
/// caller sends next, so a FIN that follows (`shutdown_write`, or close)
/// leaves in the same segment as the data instead of one of its own.
pub(crate) fn send_more(sock: &impl AsRawFd, buf: &[u8]) -> std::io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    // (nix has no name for MSG_MORE.)
    let flags = MsgFlags::from_bits_retain(libc::MSG_MORE | libc::MSG_NOSIGNAL);
    send(sock.as_raw_fd(), buf, flags).map_err(Into::into)
}

/// A pipe for splice(2): bulk data moves socket → pipe → socket inside the
/// kernel. Created only for a direction that carries bulk data.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A non-blocking pipe, or `None` (out of descriptors, or the budget's
    /// pipes all taken): the caller keeps copying.
    pub(crate) fn new() -> Option<Pipe> {
        if PIPES.fetch_add(1, Relaxed) >= PIPES_MAX.load(Relaxed) {
            PIPES.fetch_sub(1, Relaxed);
            return None;
        }
        match nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) {
            Ok((read, write)) => Some(Pipe { read, write }),
            Err(_) => {
                PIPES.fetch_sub(1, Relaxed);
                None
            }
        }
    }

    /// Move up to `len` bytes from `sock` into the pipe; 0 at EOF.
    pub(crate) fn fill_from(&self, sock: &impl AsFd, len: usize) -> std::io::Result<usize> {
        splice(sock.as_fd(), self.write.as_fd(), len)
    }

    /// Move up to `len` bytes from the pipe to `sock`.
    pub(crate) fn drain_to(&self, sock: &impl AsFd, len: usize) -> std::io::Result<usize> {
        splice(self.read.as_fd(), sock.as_fd(), len)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        PIPES.fetch_sub(1, Relaxed);
    }
}

/// splice(2) without offsets. (nix wraps it only behind its `zerocopy`
/// feature, which this crate does not enable.)
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> std::io::Result<usize> {
    // SAFETY: both descriptors are borrowed, hence open, for the duration
    // of the call; null offsets are allowed (both ends are a pipe or a
    // socket) and no memory of ours is passed.
    let rc = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// Datagrams moved per recvmmsg(2) / sendmmsg(2).
pub(crate) const BATCH: usize = 32;
/// Room for one datagram: the largest UDP payload fits.
const SLOT: usize = 65536;

/// Buffers for a batch of datagrams (one per data-plane thread): `BATCH`
/// slots of 64 KiB, allocated zeroed, so only the pages datagrams are
/// written to take memory.
pub(crate) struct Batch {
    buf: Box<[u8]>,
    lens: [usize; BATCH],
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            buf: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            lens: [0; BATCH],
            addrs: Box::new(
                // SAFETY: sockaddr_storage is plain data; all-zero is valid.
                unsafe { std::mem::zeroed() },
            ),
        }
    }
}

impl Batch {
    /// Receive up to `BATCH` queued datagrams from `sock` (non-blocking)
    /// with their source addresses; returns how many.
    pub(crate) fn recv(&mut self, sock: &impl AsRawFd) -> std::io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr arrays are valid (null pointers,
        // zero lengths) and are filled in below before use.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: likewise for the headers.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let base = self.buf.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: slot i lies inside `buf` (BATCH * SLOT bytes).
            iov[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
            iov[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every header points at a live slot of `buf` and a live
        // sockaddr_storage of `addrs`, both borrowed mutably for the call;
        // the kernel writes at most the lengths given.
        let rc = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = rc as usize;
        for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
            *len = h.msg_len as usize;
        }
        Ok(n)
    }

    /// Datagram `i` of the last `recv`.
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        &self.buf[i * SLOT..i * SLOT + self.lens[i]]
    }

    /// Source address of datagram `i` of the last `recv` (`None` for a
    /// family other than IPv4/IPv6, or a connected socket).
    pub(crate) fn source(&self, i: usize) -> Option<std::net::SocketAddr> {
        sockaddr_to_std(&self.addrs[i])
    }

    /// Send datagrams `range` of the last `recv` to `to` with sendmmsg(2),
    /// as far as the socket takes them now. Returns (sent, done): `sent`
    /// datagrams went out; those before `done` are finished (sent, or
    /// dropped on an error other than EAGAIN); those from `done` on are
    /// left because the socket is full.
    pub(crate) fn send_to(
        &self,
        sock: &impl AsRawFd,
        range: std::ops::Range<usize>,
        to: std::net::SocketAddr,
    ) -> (usize, usize) {
        use nix::sys::socket::{SockaddrLike, SockaddrStorage};
        let dest = SockaddrStorage::from(to);
        // SAFETY: as in `recv`: zeroed arrays, filled in before use.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: likewise for the headers.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let (mut at, mut sent) = (range.start, 0);
        while at < range.end {
            let count = range.end - at;
            for k in 0..count {
                let d = self.datagram(at + k);
                iov[k].iov_base = d.as_ptr() as *mut libc::c_void;
                iov[k].iov_len = d.len();
                hdrs[k].msg_hdr.msg_iov = &mut iov[k];
                hdrs[k].msg_hdr.msg_iovlen = 1;
                hdrs[k].msg_hdr.msg_name = dest.as_ptr() as *mut libc::c_void;
                hdrs[k].msg_hdr.msg_namelen = dest.len();
            }
            // SAFETY: each header points at a datagram inside `buf` and at
            // `dest`, both alive and unchanged during the call; the kernel
            // only reads them (and writes msg_len).
            let rc = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                at += rc as usize;
                sent += rc as usize;
                continue;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                break;
            }
            // The first datagram failed for another reason: drop it.
            at += 1;
        }
        (sent, at)
    }
}

/// A listening socket registered with this thread's reactor, to accept
/// from with [`accept`].
pub(crate) fn async_listener(
    listener: std::sync::Arc<std::net::TcpListener>,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::sync::Arc<std::net::TcpListener>>> {
    // SAFETY: the listener owns its descriptor, returns that one from
    // `as_raw_fd` and keeps it open at least until the `AsyncFd` drops its
    // reference (which deregisters it first).
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE)
    }
    .map_err(std::io::Error::from)
}

/// Accept the next connection on a listening socket: the socket, already
/// non-blocking and close-on-exec (accept4(2), one call), and the client's
/// address.
pub(crate) fn accept(
    listener: &impl AsRawFd,
) -> std::io::Result<(std::net::TcpStream, std::net::SocketAddr)> {
    use std::os::fd::FromRawFd;
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the address buffer and its length are valid for the call.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let peer = sockaddr_to_std(&ss).ok_or_else(|| {
        std::io::Error::other(format!(
            "accepted a connection of address family {}",
            ss.ss_family
        ))
    })?;
    Ok((stream, peer))
}

/// A socket address from the kernel's representation.
fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in,
            // which is smaller and less aligned than sockaddr_storage.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(
                SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )
                .into(),
            )
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(
                SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )
                .into(),
            )
        }
        _ => None,
    }
}

/// Start a non-blocking TCP connect to `addr` from a new socket with
/// `TCP_NODELAY` set. Returns the socket, connecting (or connected).
pub(crate) fn connect_start(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let family = if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => Ok(std::net::TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

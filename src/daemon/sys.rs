//! The few raw syscalls the data plane needs that nix does not wrap (or
//! wraps only behind features this crate does not enable).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;

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

/// Give freed heap memory back to the kernel (glibc keeps it otherwise).
/// Called after control-plane work that allocates a lot at once (a large
/// `-R`, a listing of a huge table), never on the data path.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has
    // no preconditions and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Shut the sending side of a socket down (pass a FIN on), leaving the
/// receiving side open (half-close).
pub fn shutdown_write(sock: &impl AsRawFd) -> std::io::Result<()> {
    use nix::sys::socket::{shutdown, Shutdown};
    match shutdown(sock.as_raw_fd(), Shutdown::Write) {
        Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A pipe for splice(2): bulk data moves socket → pipe → socket inside the
/// kernel. Created only for a direction that carries bulk data.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A non-blocking pipe, or `None` (out of descriptors): the caller
    /// keeps copying.
    pub fn new() -> Option<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        Some(Pipe { read, write })
    }

    /// Move up to `len` bytes from `sock` into the pipe; 0 at EOF.
    pub fn fill_from(&self, sock: &impl AsFd, len: usize) -> std::io::Result<usize> {
        splice(sock.as_fd(), self.write.as_fd(), len)
    }

    /// Move up to `len` bytes from the pipe to `sock`.
    pub fn drain_to(&self, sock: &impl AsFd, len: usize) -> std::io::Result<usize> {
        splice(self.read.as_fd(), sock.as_fd(), len)
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

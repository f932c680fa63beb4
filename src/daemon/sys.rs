//! The few raw syscalls the data plane needs that nix does not wrap.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

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

//! Reverse DNS look-up through `getnameinfo(3)` with `NI_NAMEREQD` (the
//! equivalent of ipvsadm's `gethostbyaddr`). The only unsafe code of rvsadm.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::net::IpAddr;

/// glibc's `NI_MAXHOST`.
const HOST_BUF: usize = 1025;

/// The host name registered for `ip`, or `None` when there is none.
pub(super) fn reverse_name(ip: IpAddr) -> Option<String> {
    let mut host: [libc::c_char; HOST_BUF] = [0; HOST_BUF];
    let rc = match ip {
        IpAddr::V4(v4) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sa` is a fully initialised sockaddr_in whose exact size is
            // passed; `host` is a writable buffer of the length passed; the
            // service buffer is null with length 0, which getnameinfo allows.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    HOST_BUF as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(v6) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, with a fully initialised sockaddr_in6.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in6).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    HOST_BUF as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    let bytes: Vec<u8> = host.iter().map(|&c| c as u8).collect();
    let name = CStr::from_bytes_until_nul(&bytes).ok()?;
    let name = name.to_string_lossy();
    // A name is printed as is: one with control characters is not a host
    // name (glibc checks DNS answers, /etc/hosts is not checked), so print
    // the address instead.
    if name.contains(char::is_control) {
        return None;
    }
    Some(name.into_owned())
}

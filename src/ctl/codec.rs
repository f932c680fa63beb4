//! Framing and encoding of control messages. The only file that names bincode.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of
//! bincode (standard configuration: little-endian varints). The length is
//! checked against [`MAX_FRAME`] before anything is allocated.
//!
//! Decoding is bounded by the body: bincode allocates a `String` or `Vec<u8>`
//! of the length a message claims before it reads the bytes, so every decode
//! runs with a byte limit derived from the body length ([`decode_limit`]).
//! A claim beyond it is refused before any allocation.

use serde::{de::DeserializeOwned, Serialize};
use std::io::{Read, Write};

use super::error::CtlError;

/// Largest frame either side accepts (a 10,000 × 10 table listing is ~10 MiB).
pub const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode a message body (no length prefix).
pub fn encode_body<T: Serialize>(msg: &T) -> Result<Vec<u8>, CtlError> {
    bincode::serde::encode_to_vec(msg, config()).map_err(|e| CtlError::Encode(e.to_string()))
}

/// Encode a message as a whole frame: length prefix + body.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CtlError> {
    // Encode straight after a placeholder header: no second copy of a
    // large body (a 110,000-server listing is tens of MiB).
    let mut out = vec![0u8; HEADER_LEN];
    bincode::serde::encode_into_std_write(msg, &mut out, config())
        .map_err(|e| CtlError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME as usize {
        return Err(CtlError::FrameTooLarge(len as u64));
    }
    out[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Largest frame a client may send before its hello is answered: a hello is
/// a few dozen bytes, so a stranger cannot make rvsd buffer more than this.
pub const MAX_PRE_HELLO_FRAME: u32 = 4 * 1024;

/// How many bytes bincode may "claim" per body byte. bincode counts the
/// in-memory size of what it decodes, not the bytes it reads: a one-byte
/// varint `u64` claims 8 (the widest integer in the protocol), an enum tag 4,
/// a string its length. So a valid body claims at most 8 bytes per byte.
const CLAIM_PER_BYTE: usize = 8;

/// Smallest and largest decode limits (powers of two).
const MIN_LIMIT_SHIFT: u32 = 12;
const MAX_LIMIT_SHIFT: u32 = 33;

/// The byte limit [`decode_body`] uses for a body of `len` bytes: the
/// smallest power of two ≥ 8 × `len` (at least 4 KiB, at most 8 GiB), so
/// within 2× of what a valid body can claim. No single `String`/`Vec`
/// allocation, nor all of them together, can exceed it.
pub fn decode_limit(len: usize) -> usize {
    1usize << limit_shift(len)
}

fn limit_shift(len: usize) -> u32 {
    let need = len.saturating_mul(CLAIM_PER_BYTE).max(1);
    let shift = usize::BITS - (need - 1).leading_zeros();
    shift.clamp(MIN_LIMIT_SHIFT, MAX_LIMIT_SHIFT)
}

fn decode_limited<T: DeserializeOwned, const N: usize>(
    body: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(body, config().with_limit::<N>())
}

/// Decode a body; trailing bytes are an error. The decode is limited to
/// [`decode_limit`] of the body length, so a claimed length of 2^44 or 2^63
/// is an error, not an allocation.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CtlError> {
    // bincode 2 takes the limit as a const generic: one tier per power of two.
    macro_rules! tiers {
        ($($k:literal)*) => {
            match limit_shift(body.len()) {
                $($k => decode_limited::<T, { 1usize << $k }>(body),)*
                _ => unreachable!("limit_shift is clamped"),
            }
        };
    }
    let (msg, used): (T, usize) =
        tiers!(12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33).map_err(|e| {
            match e {
                bincode::error::DecodeError::LimitExceeded => CtlError::Decode(format!(
                    "a length in the message exceeds what its {} bytes can hold",
                    body.len()
                )),
                e => CtlError::Decode(e.to_string()),
            }
        })?;
    if used != body.len() {
        return Err(CtlError::Decode(format!(
            "{} trailing bytes after the message",
            body.len() - used
        )));
    }
    Ok(msg)
}

/// Check a frame header and return the body length it announces.
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, CtlError> {
    let len = u32::from_be_bytes(header);
    if len > MAX_FRAME {
        return Err(CtlError::FrameTooLarge(len as u64));
    }
    Ok(len as usize)
}

/// Blocking read of one frame body. Memory grows with the bytes that really
/// arrive, never with the announced length alone.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, CtlError> {
    let mut header = [0u8; HEADER_LEN];
    r.read_exact(&mut header).map_err(CtlError::Io)?;
    let len = body_len(header)?;
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64)
        .read_to_end(&mut body)
        .map_err(CtlError::Io)?;
    if body.len() != len {
        return Err(CtlError::Decode(format!(
            "frame truncated: {} of {len} bytes",
            body.len()
        )));
    }
    Ok(body)
}

/// Blocking write of one message as a frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), CtlError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame).map_err(CtlError::Io)?;
    w.flush().map_err(CtlError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::proto::Request;

    #[test]
    fn round_trip_and_cap() {
        let f = encode_frame(&Request::Clear).unwrap();
        let len = body_len(f[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, f.len() - 4);
        let back: Request = decode_body(&f[4..]).unwrap();
        assert_eq!(back, Request::Clear);
        assert!(body_len(u32::MAX.to_be_bytes()).is_err());
        assert!(decode_body::<Request>(&[0xff, 0xff, 0xff]).is_err());
    }

    /// A body that claims `claim` bytes for a string or vector must be
    /// refused without allocating them (2^44 aborted rvsd, 2^63 panicked).
    #[test]
    fn huge_claimed_lengths_are_refused() {
        use crate::ctl::proto::{Response, Update};
        for claim in [1u64 << 44, 1u64 << 63, u64::MAX, 1 << 20] {
            let mut len = vec![0xfd];
            len.extend_from_slice(&claim.to_le_bytes());
            // Request::Hello { protocol: 2, client: String of `claim` bytes }:
            // the reproduction.
            let mut hello = vec![0, 2];
            hello.extend_from_slice(&len);
            let e = decode_body::<Request>(&hello).unwrap_err();
            assert!(matches!(e, CtlError::Decode(_)), "{e}");
            // A Vec<u8> (the `Vec` path of bincode) of `claim` bytes.
            let e = decode_body::<Vec<u8>>(&len).unwrap_err();
            assert!(matches!(e, CtlError::Decode(_)), "{e}");
            // A Vec of structs, and a string inside a response.
            let e = decode_body::<Vec<Request>>(&len).unwrap_err();
            assert!(matches!(e, CtlError::Decode(_)), "{e}");
            let e = decode_body::<String>(&len).unwrap_err();
            assert!(matches!(e, CtlError::Decode(_)), "{e}");
            let mut upd = vec![];
            upd.extend_from_slice(&len);
            assert!(decode_body::<Update>(&upd).is_err());
            assert!(decode_body::<Response>(&upd).is_err());
        }
    }

    #[test]
    fn limit_tiers_fit_the_body() {
        assert_eq!(decode_limit(0), 4096);
        assert_eq!(decode_limit(512), 4096);
        assert_eq!(decode_limit(513), 8192);
        assert_eq!(decode_limit(1 << 20), 8 << 20);
        assert_eq!(decode_limit((1 << 20) + 1), 16 << 20);
        assert_eq!(decode_limit(usize::MAX), 1 << 33);
        for len in [1usize, 100, 4097, 1 << 26] {
            let l = decode_limit(len);
            assert!(
                l >= len * 8 && (len * 8 < 4096 || l < len * 16),
                "{len}: {l}"
            );
        }
    }

    /// Valid messages whose varints each claim 8 bytes for 1 still decode:
    /// the limit is not too tight.
    #[test]
    fn dense_small_integers_still_decode() {
        let v: Vec<u64> = vec![0; 100_000];
        let body = encode_body(&v).unwrap();
        assert!(body.len() < 100_010);
        let back: Vec<u64> = decode_body(&body).unwrap();
        assert_eq!(back, v);
        let s = "x".repeat(1 << 20);
        let back: String = decode_body(&encode_body(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

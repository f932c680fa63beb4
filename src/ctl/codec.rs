//! Framing and encoding of control messages. The only file that names bincode.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of
//! bincode (standard configuration: little-endian varints). The length is
//! checked against [`MAX_FRAME`] before anything is allocated.

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

/// Decode a body; trailing bytes are an error.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CtlError> {
    let (msg, used): (T, usize) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CtlError::Decode(e.to_string()))?;
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
}

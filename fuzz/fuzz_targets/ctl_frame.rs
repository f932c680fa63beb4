//! The control frame decoder: what rvsd does with the bytes of any client
//! (before the hello too), and what rvsadm/rvstop do with rvsd's answers.
//!
//! Input: a raw byte stream as it would arrive on the control socket. Checks:
//! nothing panics or aborts (a huge claimed length must not allocate), every
//! decoded message re-encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs::ctl::codec::{body_len, decode_body, encode_body, read_frame, HEADER_LEN};
use rvs::ctl::proto::{Request, Response};

fn round_trip<T>(body: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = decode_body::<T>(body) {
        let again = encode_body(&msg).expect("a decoded message encodes");
        let back: T = decode_body(&again).expect("a re-encoded message decodes");
        assert_eq!(back, msg, "decode(encode(m)) != m");
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one body, both directions.
    round_trip::<Request>(data);
    round_trip::<Response>(data);

    // The input as a stream of frames, the way both ends read it.
    if data.len() >= HEADER_LEN {
        let _ = body_len(data[..HEADER_LEN].try_into().unwrap());
    }
    let mut stream = std::io::Cursor::new(data);
    for _ in 0..16 {
        let Ok(body) = read_frame(&mut stream) else {
            break;
        };
        round_trip::<Request>(&body);
        round_trip::<Response>(&body);
    }
});

//! UDP echo back end and bounded load client for bench/compare.sh.
//! Standard library only: `rustc -O -o udpbench udp.rs`.
//!
//!   udpbench echo ADDR
//!   udpbench client ADDR FLOWS WINDOW SECS SIZE
//!
//! The client keeps WINDOW datagrams in flight on each of FLOWS sockets
//! (each a separate flow through the proxy), sends one more per reply, tops
//! a silent socket up every 50 ms (lost datagrams), stops after SECS, and
//! prints `RESULT replies=N secs=S`.
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("echo") => echo(&args[2]),
        Some("client") => client(
            &args[2],
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
            args[6].parse().unwrap(),
        ),
        _ => {
            eprintln!("usage: udpbench echo ADDR | client ADDR FLOWS WINDOW SECS SIZE");
            std::process::exit(2);
        }
    }
}

fn echo(addr: &str) {
    let sock = UdpSocket::bind(addr).expect("bind");
    let mut buf = [0u8; 65536];
    loop {
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], peer);
        }
    }
}

fn client(addr: &str, flows: usize, window: usize, secs: f64, size: usize) {
    let payload = vec![b'x'; size];
    let socks: Vec<UdpSocket> = (0..flows)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.connect(addr).expect("connect");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut heard = vec![false; flows]; // false: the first check fills every window
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut replies: u64 = 0;
    let mut next_check = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_check {
            for (i, s) in socks.iter().enumerate() {
                if !heard[i] {
                    for _ in 0..window {
                        let _ = s.send(&payload);
                    }
                }
                heard[i] = false;
            }
            next_check = now + Duration::from_millis(50);
        }
        for (i, s) in socks.iter().enumerate() {
            while let Ok(_n) = s.recv(&mut buf) {
                replies += 1;
                heard[i] = true;
                let _ = s.send(&payload);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("RESULT replies={replies} secs={secs:.3}");
}

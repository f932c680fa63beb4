//! The Prometheus endpoint: scraped while traffic flows, checked by promtool.

mod common;

use common::*;
use rvs::ctl::proto::{Protocol, RealServerSpec, Request, ServiceKey, ServiceSpec};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

#[test]
fn metrics_move_with_traffic_and_pass_promtool() {
    let mport = free_port("127.0.0.1");
    let maddr = format!("127.0.0.1:{mport}");
    let d = Daemon::start_with(&["--metrics-listen", &maddr]);
    let b = Backend::tcp("m");
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let key = ServiceKey {
        proto: Protocol::Tcp,
        addr: vip,
    };
    let mut c = d.client();
    c.call(&Request::AddService(ServiceSpec::new(key))).unwrap();
    c.call(&Request::AddServer {
        service: key,
        server: RealServerSpec::new(b.addr),
    })
    .unwrap();

    let svc = format!(
        "rvs_service_connections_total{{protocol=\"tcp\",address=\"127.0.0.1\",port=\"{}\"}}",
        vip.port()
    );
    let before = scrape(&maddr);
    assert_eq!(value(&before, &svc), 0);
    for _ in 0..5 {
        assert_eq!(who(vip), "m");
    }
    assert!(
        wait_for(10, || value(&scrape(&maddr), &svc) == 5),
        "{}",
        scrape(&maddr)
    );
    let after = scrape(&maddr);
    let out_bytes = format!(
        "rvs_real_server_out_bytes_total{{protocol=\"tcp\",address=\"127.0.0.1\",port=\"{}\",server_address=\"127.0.0.1\",server_port=\"{}\"}}",
        vip.port(),
        b.addr.port()
    );
    assert_eq!(value(&after, &out_bytes), 10, "five greetings of two bytes");
    let up = out_bytes.replace("rvs_real_server_out_bytes_total", "rvs_real_server_up");
    assert_eq!(value(&after, &up), 1);
    // The default TCP check runs every 2 s: its latency appears once it ran.
    let latency = out_bytes.replace(
        "rvs_real_server_out_bytes_total",
        "rvs_real_server_check_latency_seconds",
    );
    assert!(
        wait_for(10, || scrape(&maddr).contains(&latency)),
        "{}",
        scrape(&maddr)
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test installs the prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );
}

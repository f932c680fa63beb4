//! Number formats: counts, bandwidth, uptime, ages.

use std::time::Duration;

/// 999, 1.2k, 12k, 1.2M, ... (SI, for counts).
pub fn fmt_count(n: u64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    if n < 1000 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// 512 B/s, 1.5 KiB/s, 12 MiB/s, ... (binary units, bytes per second).
pub fn fmt_bps(n: u64) -> String {
    const UNITS: [&str; 6] = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s"];
    if n < 1024 {
        return format!("{n} B/s");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// 45s, 12m05s, 3h07m, 2d04h.
pub fn fmt_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Age of an event: now, 12s, 5m, 2h, 3d.
pub fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "now".to_string(),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1500), "1.5k");
        assert_eq!(fmt_count(12_345), "12k");
        assert_eq!(fmt_count(2_500_000), "2.5M");
        assert_eq!(fmt_count(7_000_000_000), "7.0G");
        assert_eq!(fmt_bps(0), "0 B/s");
        assert_eq!(fmt_bps(1023), "1023 B/s");
        assert_eq!(fmt_bps(1536), "1.5 KiB/s");
        assert_eq!(fmt_bps(1_500_000), "1.4 MiB/s");
        assert_eq!(fmt_bps(200 * 1024 * 1024), "200 MiB/s");
        assert_eq!(fmt_uptime(3_725), "1h02m");
        assert_eq!(fmt_uptime(59), "59s");
        assert_eq!(fmt_uptime(90_000), "1d01h");
        assert_eq!(fmt_age(Duration::from_secs(75)), "1m");
    }
}

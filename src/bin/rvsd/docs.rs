//! Extra sections of the rvsd(8) man page (the options come from clap).

use rvs::docgen::{ManExtra, ManSection};

const DESCRIPTION: &str = r#".B rvsd
is the Rust Virtual Server daemon, a layer-4 load balancer in userspace.
It owns the virtual-service table, binds every virtual service (TCP or UDP,
IPv4 or IPv6), schedules each new connection or UDP flow to a real server with
one of the IPVS schedulers (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq,
fo, ovf, mh, twos), proxies the traffic both ways, keeps live counters and
rates, and serves a control socket that
.BR rvsadm (8)
and
.BR rvstop (1)
talk to.
.PP
Every accepted change is written to the state file before it is
acknowledged, so the table survives restarts and crashes. A real server that
refuses connections is retried transparently and, after
.B \-\-fail\-after
consecutive failures, taken out of rotation until it answers again.
.PP
rvsd runs in the foreground and logs to standard error. SIGTERM or SIGINT
stops accepting, lets running connections finish for up to
.B \-\-drain\-timeout
seconds, removes the socket and exits.
"#;

const EXIT_STATUS: &str = r#".TP
.B 0
Stopped cleanly after SIGTERM or SIGINT.
.TP
.B 1
Could not start: another rvsd answers on the socket, the state file is
unreadable or corrupt (it is left untouched; the message says how to move it
aside), a saved virtual service cannot be bound, or the metrics address is
taken.
.TP
.B 2
Invalid command line.
"#;

const FILES: &str = r#".TP
.I /run/rvs/rvsd.sock
Control socket when run as root (mode 0660 unless \-\-socket\-mode).
.TP
.I /var/lib/rvs/table.state
The table when run as root: magic, format version, checksum and body;
replaced atomically (temporary file, fsync, rename, fsync of the directory).
"#;

const ENVIRONMENT: &str = r#".TP
.B RVS_SOCKET
Control socket path when \-\-socket is not given.
.TP
.B RUST_LOG
Log filter (tracing-subscriber syntax); overrides \-\-log\-level.
.TP
.B XDG_RUNTIME_DIR, XDG_STATE_HOME
Defaults for the socket and the state directory of unprivileged users.
"#;

const EXAMPLES: &str = r#"Start the daemon as root, then balance a web service over two servers:
.PP
.nf
.RS
rvsd &
rvsadm \-A \-t 192.0.2.10:80 \-s wlc
rvsadm \-a \-t 192.0.2.10:80 \-r 10.0.0.1:80 \-w 2
rvsadm \-a \-t 192.0.2.10:80 \-r 10.0.0.2:80
rvsadm \-L \-n
.RE
.fi
.PP
An unprivileged instance with its own socket and state, metrics for
Prometheus, and a group of operators allowed to change the table:
.PP
.nf
.RS
rvsd \-\-socket /tmp/rvs.sock \-\-state\-dir ~/rvs \-\-metrics\-listen 127.0.0.1:9100 \-\-socket\-group lbadmin
.RE
.fi
.PP
Try it without any set-up (two demo back ends on 127.0.0.1:8081 and :8082):
.PP
.nf
.RS
rvsd \-\-demo
curl http://127.0.0.1:8080/
.RE
.fi
"#;

const SEE_ALSO: &str = r#".BR rvsadm (8),
.BR rvstop (1),
.BR ipvsadm (8)
"#;

pub fn man_extra() -> ManExtra {
    ManExtra {
        section: "8".into(),
        date: "2025-01-01".into(),
        manual: "System Manager's Manual".into(),
        synopsis: None,
        sections: vec![
            ManSection::new("OPERATION", DESCRIPTION),
            ManSection::new("EXIT STATUS", EXIT_STATUS),
            ManSection::new("FILES", FILES),
            ManSection::new("ENVIRONMENT", ENVIRONMENT),
            ManSection::new("EXAMPLES", EXAMPLES),
            ManSection::new("SEE ALSO", SEE_ALSO),
        ],
    }
}

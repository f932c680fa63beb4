//! The exact `-h` text: ipvsadm 1.31's, then the rvs extensions.

/// The scheduler list as ipvsadm's `-h` prints it (no `twos`).
const HELP_SCHEDULERS: &str = "rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh";

/// ipvsadm 1.31's `-h` text, every program name replaced by `prog`.
pub fn help_text(prog: &str) -> String {
    let p = prog;
    format!(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)
Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} --start-daemon {{master|backup}} [daemon-options]
  {p} --stop-daemon {{master|backup}}
  {p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of {HELP_SCHEDULERS},
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
{RVS_HELP}"
    )
}

/// The rvs extensions, listed after ipvsadm's own help text.
const RVS_HELP: &str = "
rvs extensions (long options only):
  --socket path                       rvsd control socket (env RVS_SOCKET)
  --json                              listings as JSON
  --health                            list real-server health (with -L)
Health checks (-A/-E: service defaults; -a/-e: per real server):
  --check tcp|http|exec|udp|none      kind of active check (default: tcp for TCP services)
  --check-interval dur                time between probes (default 2s; 200ms, 1.5s ...;
                                      at least 100ms, 1s for exec)
  --check-timeout dur                 probe timeout (default 1s; at least 10ms)
  --check-rise n                      successes that bring a server up (default 2)
  --check-fall n                      failures that take a server down (default 3)
  --check-jitter dur                  random extra delay before each probe
  --check-addr address                probe this address instead
  --check-port port                   probe this port instead
  --check-initial up|down             state before the first verdict (default up)
  --check-http-path path              HTTP GET path (default /)
  --check-http-host host              HTTP Host header
  --check-http-status lo[-hi]         accepted status codes (default 200-399)
  --check-http-body text              text the body must contain
  --check-exec command                command run by sh -c; exit 0 = up
  --check-udp-send text               UDP probe payload
  --check-udp-expect text             text the UDP reply must contain
  --slow-start secs                   ramp the weight up over secs after recovery
  --sorry-server address:port         used while no real server is up (-A/-E)
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::OPTIONS;
    use std::collections::BTreeSet;

    /// Words of `text` that look like options (`-x`, `--long-name`).
    fn option_words(text: &str) -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| {
                let name = w.strip_prefix("--").or_else(|| w.strip_prefix('-'));
                name.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_alphanumeric()))
            })
            .map(str::to_string)
            .collect()
    }

    /// Long options ipvsadm 1.31's `-h` does not list; its text is kept as is.
    const NOT_IN_IPVSADM_HELP: &[&str] = &["--version"];

    /// `-h` names every long option the parser accepts, and nothing else.
    #[test]
    fn help_names_every_long_option() {
        let words = option_words(&help_text("rvsadm"));
        let longs: BTreeSet<String> = OPTIONS
            .iter()
            .filter_map(|o| o.long)
            .map(|l| format!("--{l}"))
            .collect();
        let missing: Vec<_> = longs
            .difference(&words)
            .filter(|l| !NOT_IN_IPVSADM_HELP.contains(&l.as_str()))
            .collect();
        assert!(missing.is_empty(), "-h does not name {missing:?}");
        let shorts: BTreeSet<String> = OPTIONS
            .iter()
            .filter_map(|o| o.short)
            .map(|c| format!("-{c}"))
            .collect();
        let unknown: Vec<_> = words
            .iter()
            // `-x` or `--long` (not `lo[-hi]`, a value).
            .filter(|w| w.starts_with("--") || w.len() == 2)
            .filter(|w| !longs.contains(*w) && !shorts.contains(*w))
            .collect();
        assert!(
            unknown.is_empty(),
            "-h names {unknown:?}, unknown to the parser"
        );
    }
}

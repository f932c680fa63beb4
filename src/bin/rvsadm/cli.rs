//! The ipvsadm option table (popt form), the command/option compatibility
//! matrix, the exact `-h` text, and a clap description of the same options
//! used only to generate the man page and shell completions.
//!
//! Parsing itself is done by [`crate::request`] with the popt emulation in
//! [`crate::popt`]: clap cannot reproduce ipvsadm's grammar and messages.

use crate::popt::{ArgKind, OptDef};

/// Everything that can appear on an rvsadm command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    // Commands.
    AddService,
    EditService,
    DeleteService,
    Clear,
    Restore,
    Save,
    AddServer,
    EditServer,
    DeleteServer,
    List,
    Zero,
    Set,
    StartDaemon,
    StopDaemon,
    Help,
    Version,
    // Options (matrix index in comments).
    Numeric,        // 0
    Connection,     // 1
    Tcp,            // 2
    Udp,            // 2
    Sctp,           // 2
    Fwmark,         // 2
    Scheduler,      // 3
    Persistent,     // 4
    Netmask,        // 5
    RealServer,     // 6
    Gatewaying,     // 7
    Ipip,           // 7
    Masquerading,   // 7
    Weight,         // 8
    UThreshold,     // 9
    LThreshold,     // 10
    McastInterface, // 11
    Timeout,        // 12
    Daemon,         // 13
    Stats,          // 14
    Rate,           // 15
    Thresholds,     // 16
    PersistentConn, // 17
    NoSort,         // 18
    SyncId,         // 19
    Exact,          // 20
    Ops,            // 21
    Pe,             // 22
    SchedFlags,     // 23
    McastGroup,     // 24
    McastPort,      // 25
    McastTtl,       // 26
    SyncMaxlen,     // 27
    TunInfo,        // 28
    TunType,        // 29
    TunPort,        // 30
    TunNocsum,      // 31
    TunCsum,        // 32
    TunRemcsum,     // 33
    Ipv6,
    Sort,
    // rvs extensions (long only, outside the matrix).
    Socket,
    Json,
    // rvs health-check extensions (long only, outside the matrix).
    Check,
    CheckInterval,
    CheckTimeout,
    CheckRise,
    CheckFall,
    CheckJitter,
    CheckAddr,
    CheckPort,
    CheckInitial,
    CheckHttpPath,
    CheckHttpHost,
    CheckHttpStatus,
    CheckHttpBody,
    CheckExec,
    CheckUdpSend,
    CheckUdpExpect,
    SlowStart,
    SorryServer,
    Health,
}

/// The rvs health options with their names as used in messages and `-S`.
pub const HEALTH_OPTIONS: &[(Opt, &str)] = &[
    (Opt::Check, "check"),
    (Opt::CheckInterval, "check-interval"),
    (Opt::CheckTimeout, "check-timeout"),
    (Opt::CheckRise, "check-rise"),
    (Opt::CheckFall, "check-fall"),
    (Opt::CheckJitter, "check-jitter"),
    (Opt::CheckAddr, "check-addr"),
    (Opt::CheckPort, "check-port"),
    (Opt::CheckInitial, "check-initial"),
    (Opt::CheckHttpPath, "check-http-path"),
    (Opt::CheckHttpHost, "check-http-host"),
    (Opt::CheckHttpStatus, "check-http-status"),
    (Opt::CheckHttpBody, "check-http-body"),
    (Opt::CheckExec, "check-exec"),
    (Opt::CheckUdpSend, "check-udp-send"),
    (Opt::CheckUdpExpect, "check-udp-expect"),
    (Opt::SlowStart, "slow-start"),
    (Opt::SorryServer, "sorry-server"),
    (Opt::Health, "health"),
];

const fn o(long: &'static str, short: Option<char>, arg: ArgKind, id: Opt) -> OptDef<Opt> {
    OptDef {
        long: Some(long),
        short,
        arg,
        id,
    }
}

use ArgKind::{None as N, Optional as O, Required as R};

/// ipvsadm 1.31's popt table plus the rvs extensions.
pub const OPTIONS: &[OptDef<Opt>] = &[
    o("add-service", Some('A'), N, Opt::AddService),
    o("edit-service", Some('E'), N, Opt::EditService),
    o("delete-service", Some('D'), N, Opt::DeleteService),
    o("clear", Some('C'), N, Opt::Clear),
    o("list", Some('L'), N, Opt::List),
    OptDef {
        long: None,
        short: Some('l'),
        arg: N,
        id: Opt::List,
    },
    o("zero", Some('Z'), N, Opt::Zero),
    o("add-server", Some('a'), N, Opt::AddServer),
    o("edit-server", Some('e'), N, Opt::EditServer),
    o("delete-server", Some('d'), N, Opt::DeleteServer),
    o("set", None, N, Opt::Set),
    o("help", Some('h'), N, Opt::Help),
    o("version", Some('v'), N, Opt::Version),
    o("restore", Some('R'), N, Opt::Restore),
    o("save", Some('S'), N, Opt::Save),
    o("start-daemon", None, R, Opt::StartDaemon),
    o("stop-daemon", None, R, Opt::StopDaemon),
    o("tcp-service", Some('t'), R, Opt::Tcp),
    o("udp-service", Some('u'), R, Opt::Udp),
    o("sctp-service", None, R, Opt::Sctp),
    o("fwmark-service", Some('f'), R, Opt::Fwmark),
    o("scheduler", Some('s'), R, Opt::Scheduler),
    o("persistent", Some('p'), O, Opt::Persistent),
    o("netmask", Some('M'), R, Opt::Netmask),
    o("real-server", Some('r'), R, Opt::RealServer),
    o("masquerading", Some('m'), N, Opt::Masquerading),
    o("ipip", Some('i'), N, Opt::Ipip),
    o("gatewaying", Some('g'), N, Opt::Gatewaying),
    o("weight", Some('w'), R, Opt::Weight),
    o("u-threshold", Some('x'), R, Opt::UThreshold),
    o("l-threshold", Some('y'), R, Opt::LThreshold),
    o("numeric", Some('n'), N, Opt::Numeric),
    o("connection", Some('c'), N, Opt::Connection),
    o("mcast-interface", None, R, Opt::McastInterface),
    o("syncid", None, R, Opt::SyncId),
    o("timeout", None, N, Opt::Timeout),
    o("daemon", None, N, Opt::Daemon),
    o("stats", None, N, Opt::Stats),
    o("rate", None, N, Opt::Rate),
    o("thresholds", None, N, Opt::Thresholds),
    o("persistent-conn", None, N, Opt::PersistentConn),
    o("nosort", None, N, Opt::NoSort),
    o("sort", None, N, Opt::Sort),
    o("exact", Some('X'), N, Opt::Exact),
    o("ipv6", Some('6'), N, Opt::Ipv6),
    o("ops", Some('o'), N, Opt::Ops),
    o("pe", None, R, Opt::Pe),
    o("sched-flags", Some('b'), R, Opt::SchedFlags),
    o("mcast-group", None, R, Opt::McastGroup),
    o("mcast-port", None, R, Opt::McastPort),
    o("mcast-ttl", None, R, Opt::McastTtl),
    o("sync-maxlen", None, R, Opt::SyncMaxlen),
    o("tun-info", None, N, Opt::TunInfo),
    o("tun-type", None, R, Opt::TunType),
    o("tun-port", None, R, Opt::TunPort),
    o("tun-nocsum", None, N, Opt::TunNocsum),
    o("tun-csum", None, N, Opt::TunCsum),
    o("tun-remcsum", None, N, Opt::TunRemcsum),
    o("socket", None, R, Opt::Socket),
    o("json", None, N, Opt::Json),
    o("check", None, R, Opt::Check),
    o("check-interval", None, R, Opt::CheckInterval),
    o("check-timeout", None, R, Opt::CheckTimeout),
    o("check-rise", None, R, Opt::CheckRise),
    o("check-fall", None, R, Opt::CheckFall),
    o("check-jitter", None, R, Opt::CheckJitter),
    o("check-addr", None, R, Opt::CheckAddr),
    o("check-port", None, R, Opt::CheckPort),
    o("check-initial", None, R, Opt::CheckInitial),
    o("check-http-path", None, R, Opt::CheckHttpPath),
    o("check-http-host", None, R, Opt::CheckHttpHost),
    o("check-http-status", None, R, Opt::CheckHttpStatus),
    o("check-http-body", None, R, Opt::CheckHttpBody),
    o("check-exec", None, R, Opt::CheckExec),
    o("check-udp-send", None, R, Opt::CheckUdpSend),
    o("check-udp-expect", None, R, Opt::CheckUdpExpect),
    o("slow-start", None, R, Opt::SlowStart),
    o("sorry-server", None, R, Opt::SorryServer),
    o("health", None, N, Opt::Health),
];

impl Opt {
    /// Matrix index (§1.3 of the reference); `None` for commands and for
    /// options outside the matrix.
    pub fn index(self) -> Option<usize> {
        use Opt::*;
        Some(match self {
            Numeric => 0,
            Connection => 1,
            Tcp | Udp | Sctp | Fwmark => 2,
            Scheduler => 3,
            Persistent => 4,
            Netmask => 5,
            RealServer => 6,
            Gatewaying | Ipip | Masquerading => 7,
            Weight => 8,
            UThreshold => 9,
            LThreshold => 10,
            McastInterface => 11,
            Timeout => 12,
            Daemon => 13,
            Stats => 14,
            Rate => 15,
            Thresholds => 16,
            PersistentConn => 17,
            NoSort => 18,
            SyncId => 19,
            Exact => 20,
            Ops => 21,
            Pe => 22,
            SchedFlags => 23,
            McastGroup => 24,
            McastPort => 25,
            McastTtl => 26,
            SyncMaxlen => 27,
            TunInfo => 28,
            TunType => 29,
            TunPort => 30,
            TunNocsum => 31,
            TunCsum => 32,
            TunRemcsum => 33,
            _ => return None,
        })
    }

    /// True for the options that select a command.
    pub fn is_command(self) -> bool {
        use Opt::*;
        matches!(
            self,
            AddService
                | EditService
                | DeleteService
                | Clear
                | Restore
                | Save
                | AddServer
                | EditServer
                | DeleteServer
                | List
                | Zero
                | Set
                | StartDaemon
                | StopDaemon
                | Help
                | Version
        )
    }

    /// Matrix row and name of a command (`None` for `-h`/`-v`).
    pub fn command_row(self) -> Option<(usize, &'static str)> {
        use Opt::*;
        Some(match self {
            AddService => (0, "add-service"),
            EditService => (1, "edit-service"),
            DeleteService => (2, "delete-service"),
            Clear => (3, "flush"),
            List => (4, "list"),
            AddServer => (5, "add-server"),
            DeleteServer => (6, "delete-server"),
            EditServer => (7, "edit-server"),
            Set => (8, "set"),
            StartDaemon => (9, "start-daemon"),
            StopDaemon => (10, "stop-daemon"),
            Restore => (11, "restore"),
            Save => (12, "save"),
            Zero => (13, "zero"),
            _ => return None,
        })
    }
}

/// Option names by matrix index, as error messages print them.
pub const OPT_NAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// `commands_v_options`: `+` compulsory, `x` illegal, `1` at most one of
/// the group, blank optional. Rows in [`Opt::command_row`] order.
pub const MATRIX: [&[u8; 34]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

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

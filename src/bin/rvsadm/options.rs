//! The ipvsadm option table (popt form) with the rvs extensions, and the
//! command/option compatibility matrix.
//!
//! Parsing itself is done by [`crate::request`] with the popt emulation in
//! [`crate::popt`]: clap cannot reproduce ipvsadm's grammar and messages.
//! The `-h` text is in [`crate::help`], the clap description used for the
//! man page and completions in [`crate::manpage`].

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
    /// Matrix index (ipvsadm's “Options”); `None` for commands and for
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

    /// True for the rvs health options (long only, outside the matrix).
    pub fn is_health(self) -> bool {
        use Opt::*;
        matches!(
            self,
            Check
                | CheckInterval
                | CheckTimeout
                | CheckRise
                | CheckFall
                | CheckJitter
                | CheckAddr
                | CheckPort
                | CheckInitial
                | CheckHttpPath
                | CheckHttpHost
                | CheckHttpStatus
                | CheckHttpBody
                | CheckExec
                | CheckUdpSend
                | CheckUdpExpect
                | SlowStart
                | SorryServer
                | Health
        )
    }

    /// The long name in [`OPTIONS`], as messages and `-S` print it.
    pub fn long_name(self) -> &'static str {
        OPTIONS
            .iter()
            .find(|d| d.id == self)
            .and_then(|d| d.long)
            .unwrap_or("?")
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

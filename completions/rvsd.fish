complete -c rvsd -l socket -d 'Control socket path [default: /run/rvs/rvsd.sock as root, else $XDG_RUNTIME_DIR/rvs/rvsd.sock, else /tmp/rvs-$UID/rvsd.sock]' -r -F
complete -c rvsd -l state-dir -d 'Directory of the state file (table.state) [default: /var/lib/rvs as root, else $XDG_STATE_HOME/rvs]' -r -F
complete -c rvsd -l log-level -d 'Log level: error, warn, info, debug or trace (RUST_LOG overrides)' -r
complete -c rvsd -l socket-group -d 'Members of this group may change the table (the socket is given to it)' -r
complete -c rvsd -l socket-mode -d 'Permission bits of the control socket, in octal; who can open it can list' -r
complete -c rvsd -l drain-timeout -d 'Seconds running connections may take to finish after SIGTERM/SIGINT' -r
complete -c rvsd -l max-connections -d 'Cap on concurrent proxied TCP connections; lowered to what the open-files limit allows (logged at start: "connection cap N")' -r
complete -c rvsd -l max-udp-flows -d 'Cap on concurrent UDP flows (each holds an ephemeral port), apart from the TCP cap; also lowered to what the open-files limit allows [default: half the host\'s ephemeral port range]' -r
complete -c rvsd -l udp-unreplied-timeout -d 'Seconds a UDP flow whose real server has not answered yet may stay idle (at most the `udp` timeout of --set)' -r
complete -c rvsd -l fail-after -d 'Consecutive failed connects, or connections reset before any answer, that take a real server out of rotation' -r
complete -c rvsd -l metrics-listen -d 'Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default)' -r
complete -c rvsd -l default-check -d 'Active health check of TCP services that configure none: tcp (a connect every 2 s) or none (passive checks only)' -r -f -a "tcp\t''
none\t''"
complete -c rvsd -l worker-threads -d 'Threads that run the data plane, each with its own event loop and its own socket of every service (SO_REUSEPORT) [default: one per CPU this process may run on]' -r
complete -c rvsd -l generate -d 'Print a man page or shell completion script and exit' -r
complete -c rvsd -l demo -d 'Demo: start two small HTTP back ends on 127.0.0.1:8081 and :8082 and balance 127.0.0.1:8080 over them (table kept in a temporary directory unless --state-dir is given)'
complete -c rvsd -s h -l help -d 'Print help'
complete -c rvsd -s V -l version -d 'Print version'

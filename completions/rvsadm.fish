complete -c rvsadm -l set -d 'Set the idle timeouts in seconds; 0 keeps a value unchanged' -r -f
complete -c rvsadm -s t -l tcp-service -d 'TCP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -s u -l udp-service -d 'UDP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -s s -l scheduler -d 'Scheduler: rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)' -r -f -a "rr\t''
wrr\t''
lc\t''
wlc\t''
lblc\t''
lblcr\t''
dh\t''
sh\t''
sed\t''
nq\t''
fo\t''
ovf\t''
mh\t''
twos\t''"
complete -c rvsadm -s p -l persistent -d 'Persistent service; the timeout defaults to 360 seconds' -r -f
complete -c rvsadm -s M -l netmask -d 'Persistence granularity: IPv4 mask, or prefix length for IPv6' -r -f
complete -c rvsadm -s r -l real-server -d 'Real server address; the port defaults to the service port' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -s w -l weight -d 'Capacity of the real server, 0 to 2147483647 (default 1)' -r -f
complete -c rvsadm -s x -l u-threshold -d 'Upper connection threshold (0 = none)' -r -f
complete -c rvsadm -s y -l l-threshold -d 'Lower connection threshold (0 = none)' -r -f
complete -c rvsadm -s b -l sched-flags -d 'Scheduler flags: flag-N, sh-fallback, sh-port, mh-fallback, mh-port' -r -f -a "flag-1\t''
flag-2\t''
flag-3\t''
sh-fallback\t''
sh-port\t''
mh-fallback\t''
mh-port\t''"
complete -c rvsadm -l socket -d 'Control socket of rvsd (default: $RVS_SOCKET, else see FILES)' -r -F
complete -c rvsadm -l check -d 'Kind of active check: tcp, http, exec, udp or none (default: tcp for TCP services, none for UDP)' -r -f -a "tcp\t''
http\t''
exec\t''
udp\t''
none\t''"
complete -c rvsadm -l check-interval -d 'Time between probes, e.g. 2, 1.5s or 200ms (default 2s; at least 100ms, 1s for exec checks)' -r -f
complete -c rvsadm -l check-timeout -d 'Probe timeout (default 1s; at least 10ms)' -r -f
complete -c rvsadm -l check-rise -d 'Consecutive successes that bring a down server up (default 2)' -r -f
complete -c rvsadm -l check-fall -d 'Consecutive failures that take an up server down (default 3)' -r -f
complete -c rvsadm -l check-jitter -d 'Random extra delay before each probe, up to this long' -r -f
complete -c rvsadm -l check-addr -d 'Probe this address instead of the real server\'s' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -l check-port -d 'Probe this port instead of the real server\'s' -r -f
complete -c rvsadm -l check-initial -d 'State before the first verdict: up (default) or down until proven' -r -f -a "up\t''
down\t''"
complete -c rvsadm -l check-http-path -d 'HTTP check: path to GET (default /)' -r -f
complete -c rvsadm -l check-http-host -d 'HTTP check: Host header (default the probed address)' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -l check-http-status -d 'HTTP check: accepted status codes (default 200-399)' -r -f
complete -c rvsadm -l check-http-body -d 'HTTP check: text the response body must contain' -r -f
complete -c rvsadm -l check-exec -d 'Exec check: command run by sh -c with RVS_SERVER_ADDR and RVS_SERVER_PORT set; exit 0 means up; killed with its process group on timeout' -r -f -a "(__fish_complete_command)"
complete -c rvsadm -l check-udp-send -d 'UDP check: payload to send' -r -f
complete -c rvsadm -l check-udp-expect -d 'UDP check: text the reply must contain (any reply when unset)' -r -f
complete -c rvsadm -l slow-start -d 'Ramp the effective weight up linearly over SECS after a server comes up' -r -f
complete -c rvsadm -l sorry-server -d 'Used only while no real server of the service is available (-A/-E)' -r -f -a "(__fish_print_hostnames)"
complete -c rvsadm -l start-daemon -d 'Start a connection sync daemon (master or backup)' -r -f -a "master\t''
backup\t''"
complete -c rvsadm -l stop-daemon -d 'Stop a connection sync daemon (master or backup)' -r -f -a "master\t''
backup\t''"
complete -c rvsadm -l sctp-service -d 'SCTP service' -r -f
complete -c rvsadm -s f -l fwmark-service -d 'Firewall-mark service' -r -f
complete -c rvsadm -l mcast-interface -d 'Sync multicast interface' -r -f
complete -c rvsadm -l syncid -d 'Sync daemon id' -r -f
complete -c rvsadm -l pe -d 'Persistence engine' -r -f
complete -c rvsadm -l mcast-group -d 'Sync multicast group' -r -f
complete -c rvsadm -l mcast-port -d 'Sync UDP port' -r -f
complete -c rvsadm -l mcast-ttl -d 'Sync multicast TTL' -r -f
complete -c rvsadm -l sync-maxlen -d 'Maximum sync message length' -r -f
complete -c rvsadm -l tun-type -d 'Tunnel type: ipip, gue or gre' -r -f -a "ipip\t''
gue\t''
gre\t''"
complete -c rvsadm -l tun-port -d 'Tunnel destination port' -r -f
complete -c rvsadm -s A -l add-service -d 'Add a virtual service'
complete -c rvsadm -s E -l edit-service -d 'Edit a virtual service: every option not given is reset to its default'
complete -c rvsadm -s D -l delete-service -d 'Delete a virtual service and all its real servers'
complete -c rvsadm -s C -l clear -d 'Delete every virtual service'
complete -c rvsadm -s L -s l -l list -d 'List the table (-l is the same), one service, the connections (-c) or the timeouts (--timeout)'
complete -c rvsadm -s Z -l zero -d 'Zero the counters and rates of one service or of all services'
complete -c rvsadm -s a -l add-server -d 'Add a real server to a virtual service'
complete -c rvsadm -s e -l edit-server -d 'Edit a real server: every option not given is reset to its default'
complete -c rvsadm -s d -l delete-server -d 'Delete a real server'
complete -c rvsadm -s h -l help -d 'Print the ipvsadm usage text'
complete -c rvsadm -s v -l version -d 'Print the rvsadm version and, if reachable, the rvsd version'
complete -c rvsadm -s R -l restore -d 'Read commands from standard input and apply them all or none'
complete -c rvsadm -s S -l save -d 'Print the table as commands that -R reads back'
complete -c rvsadm -s m -l masquerading -d 'Masquerading (NAT); the default and only method of rvs'
complete -c rvsadm -s o -l ops -d 'One-packet scheduling (UDP services only)'
complete -c rvsadm -s n -l numeric -d 'Numeric addresses and ports'
complete -c rvsadm -s c -l connection -d 'List the connection table'
complete -c rvsadm -l timeout -d 'List the timeouts (tcp tcpfin udp)'
complete -c rvsadm -l stats -d 'Statistics counters'
complete -c rvsadm -l rate -d 'Rate estimates'
complete -c rvsadm -l thresholds -d 'Threshold information'
complete -c rvsadm -l persistent-conn -d 'Persistent connection information'
complete -c rvsadm -l nosort -d 'Do not sort services and real servers'
complete -c rvsadm -l sort -d 'Does nothing (sorting is the default)'
complete -c rvsadm -s X -l exact -d 'Exact numbers instead of K/M/G/T abbreviations'
complete -c rvsadm -l tun-info -d 'Tunnel information'
complete -c rvsadm -l json -d 'JSON output for -L, -L -c and -L --timeout'
complete -c rvsadm -l health -d 'With -L: per real server its health state, since when, last check result, latency and reason'
complete -c rvsadm -s i -l ipip -d 'IP-in-IP tunneling'
complete -c rvsadm -s g -l gatewaying -d 'Direct routing'
complete -c rvsadm -l daemon -d 'List sync daemons'
complete -c rvsadm -s 6 -l ipv6 -d 'Firewall-mark service is IPv6'
complete -c rvsadm -l tun-nocsum -d 'Tunnel without checksum'
complete -c rvsadm -l tun-csum -d 'Tunnel with checksum'
complete -c rvsadm -l tun-remcsum -d 'Tunnel with remote checksum'

complete -c rvstop -l socket -d 'Control socket of rvsd [default: $RVS_SOCKET, else /run/rvs/rvsd.sock as root, else $XDG_RUNTIME_DIR/rvs/rvsd.sock, else /tmp/rvs-$UID/rvsd.sock]' -r -F
complete -c rvstop -l interval -d 'Refresh interval in milliseconds (100 to 60000)' -r
complete -c rvstop -l generate -d 'Print a man page or shell completion script and exit' -r -f -a "man\t''
complete-bash\t''
complete-zsh\t''
complete-fish\t''"
complete -c rvstop -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rvstop -s V -l version -d 'Print version'

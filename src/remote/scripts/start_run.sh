# --- start run: $1 NAME, $2 RUN_ID. Start one supervised run through the wrapper in
# the background (its own session, detached from this connection) and return at once,
# only if the host holds RUN_ID's install; the wrapper records the run's end in runs.log,
# which the probes read.
wv_init "$1"
wv_run_ok "$2" || wv_die "invalid run id" 65
wv_facts
[ "$WV_OWNER" = "$2" ] || wv_die "the host holds ${WV_OWNER:-no} install of $WV_NAME, not run $2's; not started" 78
case $WV_ST in probation | confirmed) ;; *) wv_die "run $2's install is ${WV_ST:-unreadable} here; not started" 78 ;; esac
[ -z "$WV_TX" ] || [ "$WV_TX" = "$2" ] || wv_die "run $WV_TX's install is under way here; not started" 78
[ -x "$WV_RUN" ] || wv_die "$WV_NAME is not installed here (no $WV_RUN)" 78
setsid "$WV_RUN" </dev/null >/dev/null 2>&1 &
echo "wavectl-start ok pid=$!"

# --- start run: $1 NAME. Start one supervised run through the wrapper in the background
# (its own session, detached from this connection) and return at once; the wrapper
# records the run's end in runs.log, which the probes read.
wv_init "$1"
[ -x "$WV_RUN" ] || wv_die "$WV_NAME is not installed here (no $WV_RUN)" 78
setsid "$WV_RUN" </dev/null >/dev/null 2>&1 &
echo "wavectl-start ok pid=$!"

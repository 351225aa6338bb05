# --- remove: $1 NAME, $2 INSTALL_PATH (empty: read it from the host), $3 seconds to
# wait for killed processes, $4 SCOPE: a run id (undo that run's install, and only if
# the host holds it) or `*all*` (purge: every version, the pre-wavectl original back).
# Report lines (values hex) end with `clean 0|1` and `wavectl-remove done`.
umask 077
wv_init "$1"
case $3 in '' | *[!0123456789]*) wv_die "invalid wait" 65 ;; esac
if [ "$4" != '*all*' ]; then wv_run_ok "$4" || wv_die "invalid run id" 65; fi
# The lock (against the guard or an install) is waited for, but a removal goes on without it.
wv_lock 20 || wv_out note "$WV_DIR/state.lock is held elsewhere: removing without it"
if [ "$4" = '*all*' ]; then
  wv_remove_full "$2" "$3" all
else
  wv_remove_run "$4" "$2" "$3"
fi
printf 'clean %s\n' "$WV_CLEAN"
printf 'wavectl-remove done\n'

# --- remove: $1 NAME, $2 INSTALL_PATH (empty: read it from the host), $3 seconds to
# wait for NAME's state lock, then for killed processes, $4 SCOPE: a run id (undo that
# run's install, and only if the host holds it) or `*all*` (purge: every version, the
# pre-wavectl original back), $5 FENCE (with `*all*`: the purge's run id, left first as
# NAME's fence; may be empty).
# Report lines (values hex) end with `clean 0|1` and `wavectl-remove done`.
umask 077
wv_init "$1"
case $3 in '' | *[!0123456789]*) wv_die "invalid wait" 65 ;; esac
if [ "$4" != '*all*' ]; then wv_run_ok "$4" || wv_die "invalid run id" 65; fi
if [ "$4" = '*all*' ] && [ -n "${5-}" ]; then
  wv_run_ok "$5" || wv_die "invalid run id" 65
  # The fence never moves back (a retry of an older purge).
  wv_word "$WV_ROOT/.fences/$WV_NAME"
  _fo=$WV_VAL
  if [ -z "$_fo" ] || ! wv_stamp "$_fo" || { _fs=$WV_VAL && wv_stamp "$5" && [ "$WV_VAL" -gt "$_fs" ]; }; then
    { mkdir -p "$WV_ROOT/.fences" && wv_put "$WV_ROOT/.fences/$WV_NAME" "$5$WV_NL"; } 2>/dev/null ||
      wv_problem "cannot leave the purge's fence in $WV_ROOT/.fences"
  fi
fi
# Never without the lock (against an install, another removal, the guard): a removal
# that cannot have it in time changes nothing, and the host stays pending.
if ! wv_lock "$3"; then
  wv_problem "$WV_DIR/state.lock is held here (an install, a removal or the guard is under way): nothing was removed; the host stays pending until a reconcile finds it free"
  printf 'killed 0\nrestored 0\nclean 0\nwavectl-remove done\n'
  exit 0
fi
if [ "$4" = '*all*' ]; then
  wv_remove_full "$2" "$3" all
else
  wv_remove_run "$4" "$2" "$3"
fi
printf 'clean %s\n' "$WV_CLEAN"
printf 'wavectl-remove done\n'

# --- confirm: $1 NAME, $2 RUN_ID. Manifest state probation -> confirmed, only if the
# manifest is RUN_ID's; the lease is removed. Prints `wavectl-confirm ok`; otherwise exit
# 78 with `wavectl-refused <hex reason>`.
umask 077
wv_init "$1"
RUN=$2
wv_run_ok "$RUN" || wv_die "invalid run id" 65
wv_refuse() {
  wv_hexv "$1"
  printf 'wavectl-refused %s\n' "$WV_HEX"
  printf 'wavectl: refused: %s\n' "$1" >&2
  exit 78
}
wv_lock 10 || wv_die "$WV_NAME is busy here ($WV_DIR/state.lock is held)" 75
wv_facts
if [ "$WV_OWNER" = "$RUN" ]; then
  [ -z "$WV_TX" ] || wv_refuse "run $WV_TX's install did not finish here: resume it (install again) before confirming"
  case $WV_ST in
    confirmed) ;;
    probation) wv_set_state confirmed || wv_die "cannot rewrite $WV_MANIFEST" ;;
    *) wv_refuse "run $RUN's install is being removed here (state ${WV_ST:-unreadable})" ;;
  esac
  rm -f "$WV_LEASE" || wv_die "cannot remove $WV_LEASE"
  wv_mf_read "$WV_DIR"
  [ "$WV_MFS" = confirmed ] || wv_die "manifest state is $WV_MFS after confirm"
  printf 'wavectl-confirm ok\n'
  exit 0
fi
_rv=
[ -f "$WV_REV" ] && { read -r _rr _rl _ra _rc < "$WV_REV"; } 2>/dev/null && [ "$_rr" = "$RUN" ] && _rv=1
if [ -n "$_rv" ]; then
  wv_refuse "the lease of run $RUN expired at $_rl (unix time, host clock) and the host reverted it at $_ra"
elif [ -n "$WV_TX" ]; then
  wv_refuse "the host holds run $WV_TX's install, under way or cut short, not run $RUN's"
elif [ -n "$WV_OWNER" ]; then
  wv_refuse "the host holds run $WV_OWNER's install ($WV_ST), not run $RUN's"
else
  wv_refuse "$WV_NAME is not installed here"
fi

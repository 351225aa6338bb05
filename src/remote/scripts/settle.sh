# --- settle: $1 NAME, $2 RUN_ID. What the host holds of NAME, for resume and
# reconcile: `manifest <hex>` (whichever release's form) or
# `manifest none`; `txn <run>`; `reverted <run>
# <lease until> <at> <clean>` when the guard reverted RUN_ID; `runs <n>` (runs.log lines
# of RUN_ID); `running 0|1`; `prev <run>` (the version kept for rollback); then
# `wavectl-settle done`.
wv_init "$1"
wv_run_ok "$2" || wv_die "invalid run id" 65
# Read under NAME's state lock: a guard's revert or a removal in progress would be seen
# half done (a manifest named, then gone before it is read).
wv_lock 10 shared || wv_die "$WV_NAME is busy here ($WV_DIR/state.lock is held)" 75
wv_facts
if [ -n "$WV_MFF" ]; then
  wv_hexj "$(od -An -v -tx1 < "$WV_MFF")"
  printf 'manifest %s\n' "$WV_HEX"
else
  printf 'manifest none\n'
fi
[ -z "$WV_TX" ] || printf 'txn %s\n' "$WV_TX"
wv_reverted "$2"
printf 'runs %s\n' "$(wv_runs "$2" | wc -l | tr -d ' ')"
printf 'running %s\n' "$(wv_running)"
if [ -n "$WV_PREVFOR" ]; then
  wv_mf_read "$WV_PREVDIR"
  wv_run_ok "$WV_MFR" && printf 'prev %s\n' "$WV_MFR"
fi
printf 'wavectl-settle done\n'

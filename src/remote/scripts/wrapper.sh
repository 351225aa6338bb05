# --- wrapper: `run` = one supervised run of the script; `run guard` = the boot guard.
# NAME, INSTALL_PATH and TIMEOUT are set (quoted by wavectl) at the top of this file.
# Exit: the script's code (124 = its timeout), 78 = not installed/revoked/rebooted
# during probation (the script is not run), 0 = skipped because a run is in progress.
wv_init "$NAME"
case ${1-} in
  guard) wv_guard; exit 0 ;;
  '') ;;
  *) printf 'usage: %s [guard]\n' "$0" >&2; exit 64 ;;
esac

# wv_may_run: the manifest allows a run (and no reboot happened during probation).
wv_may_run() {
  _ms=$(wv_state)
  case $_ms in
    probation | confirmed) ;;
    *)
      printf 'wavectl: %s is %s on this host; not running it\n' "$NAME" "${_ms:-not installed}" >&2
      return 1
      ;;
  esac
  if [ "$_ms" = probation ] && [ -f "$WV_DIR/boot_id" ]; then
    _then=$(cat "$WV_DIR/boot_id" 2>/dev/null)
    _now=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
    if [ -n "$_now" ] && [ "$_then" != "$_now" ]; then
      printf 'wavectl: %s: host rebooted during probation; the boot guard removes it\n' "$NAME" >&2
      return 1
    fi
  fi
  return 0
}

wv_may_run || exit 78
exec 9>> "$WV_DIR/lock" || exit 78
if command -v flock > /dev/null 2>&1 && ! flock -n 9; then
  printf 'wavectl: %s is already running; this run is skipped\n' "$NAME" >&2
  exit 0
fi
wv_may_run || exit 78

# Cap the logs (checked before each run).
if [ -f "$WV_DIR/last.log" ] && [ "$(wc -c < "$WV_DIR/last.log")" -gt 262144 ]; then
  tail -c 131072 "$WV_DIR/last.log" > "$WV_DIR/last.log.tmp" && mv -f "$WV_DIR/last.log.tmp" "$WV_DIR/last.log"
fi
if [ -f "$WV_DIR/runs.log" ] && [ "$(wc -l < "$WV_DIR/runs.log")" -gt 4096 ]; then
  tail -n 2048 "$WV_DIR/runs.log" > "$WV_DIR/runs.log.tmp" && mv -f "$WV_DIR/runs.log.tmp" "$WV_DIR/runs.log"
fi

start=$(date +%s)
# GNU timeout makes itself a process-group leader: the pid file names the whole group.
timeout -k 10s "$TIMEOUT" "$INSTALL_PATH" >> "$WV_DIR/last.log" 2>&1 < /dev/null 9>&- &
pid=$!
printf '%s\n' "$pid" > "$WV_DIR/pid.$$" && mv -f "$WV_DIR/pid.$$" "$WV_DIR/pid"
wait "$pid"
code=$?
end=$(date +%s)
rm -f "$WV_DIR/pid"
printf '%s %s %s\n' "$start" "$end" "$code" >> "$WV_DIR/runs.log"
exit "$code"

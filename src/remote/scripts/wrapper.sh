# --- wrapper: `run` = one supervised run of the script; `run guard` = the lease guard
# (every minute); `run guard boot` = the boot guard. NAME and TIMEOUT are set (quoted by
# wavectl) before this part; the install path is NAME's state (install_path).
# Exit: the script's code (124 = its timeout); 78 = refused, the script not run (not
# installed, revoked, an install under way or cut short, or in probation: a reboot
# since install or an expired lease); 0 = skipped because a run is in progress.
wv_init "$NAME"
case ${1-}:${2-} in
  guard: | guard:boot) wv_guard "${2-}"; exit 0 ;;
  :) ;;
  *) printf 'usage: %s [guard [boot]]\n' "$0" >&2; exit 64 ;;
esac

# wv_may_run: the state allows a run; WV_OWNER is then the run id of this version.
wv_may_run() {
  wv_facts
  case $WV_ST in
    probation | confirmed) ;;
    *)
      printf 'wavectl: %s is %s on this host; not running it\n' "$NAME" "${WV_ST:-not installed}" >&2
      return 1
      ;;
  esac
  if [ -n "$WV_TX" ] && [ "$WV_TX" != "$WV_OWNER" ]; then
    printf 'wavectl: %s: the install of run %s is under way or was cut short; not running it\n' "$NAME" "$WV_TX" >&2
    return 1
  fi
  [ "$WV_ST" = probation ] || return 0
  if [ -f "$WV_DIR/boot_id" ]; then
    # Both are one line (the install copied the kernel's).
    wv_word "$WV_DIR/boot_id"
    _then=$WV_VAL
    wv_word /proc/sys/kernel/random/boot_id
    _now=$WV_VAL
    if [ -n "$_now" ] && [ "$_then" != "$_now" ]; then
      printf 'wavectl: %s: host rebooted during probation; the boot guard reverts it\n' "$NAME" >&2
      return 1
    fi
  fi
  wv_lease_check
  if [ "$WV_EXPIRED" = 1 ]; then
    printf 'wavectl: %s: the lease of run %s expired at %s; the guard reverts it\n' "$NAME" "$WV_OWNER" "$WV_LEASE_UNTIL" >&2
    return 1
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
RUN_ID=$WV_OWNER
wv_read_file "$WV_DIR/install_path"
INSTALL_PATH=$WV_VAL
[ -n "$INSTALL_PATH" ] || exit 78

# Cap the logs (checked before each run, with one command: runs.log's lines and
# last.log's bytes).
if [ -s "$WV_DIR/runs.log" ] || [ -s "$WV_DIR/last.log" ]; then
  : >> "$WV_DIR/runs.log"
  : >> "$WV_DIR/last.log"
  # `LINES BYTES PATH` for each, then the total (the paths hold no blank: wv_init).
  # shellcheck disable=SC2046
  set -- $(wc -l -c "$WV_DIR/runs.log" "$WV_DIR/last.log" 2> /dev/null)
  if wv_num "${5-}" && [ "$5" -gt 262144 ]; then
    tail -c 131072 "$WV_DIR/last.log" > "$WV_DIR/last.log.tmp" && mv -f "$WV_DIR/last.log.tmp" "$WV_DIR/last.log"
  fi
  if wv_num "${1-}" && [ "$1" -gt 4096 ]; then
    tail -n 2048 "$WV_DIR/runs.log" > "$WV_DIR/runs.log.tmp" && mv -f "$WV_DIR/runs.log.tmp" "$WV_DIR/runs.log"
  fi
fi

# wv_spawn MODE: start the run (GNU timeout, which makes itself a process-group leader,
# running the script) in a cgroup of its own — MODE scope: a transient systemd scope
# `wavectl-NAME_<$$>.scope` (systemd-run execs the run itself once the scope holds it;
# until then the marker file `scope.wait` stays); MODE dir: the cgroup directory WV_CG
# (if any) — and record it as `BOOT PID START` in the pid file; then wait for it (its
# exit code into `code`). stdout goes to last.log as it comes; stderr to stderr.run,
# added to last.log after the run, so a failed run's stderr can be told apart.
wv_spawn() {
  if [ "$1" = scope ]; then
    : > "$WV_DIR/scope.wait"
    # The inner script is constant: its $0 and $@ are the marker and the run.
    # shellcheck disable=SC2016
    systemd-run --scope --quiet --collect --unit="wavectl-${WV_NAME}_$$" -- \
      /bin/sh -c 'rm -f "$0" && exec "$@"' "$WV_DIR/scope.wait" timeout -k 10s "$TIMEOUT" "$INSTALL_PATH" \
      >> "$WV_DIR/last.log" 2> "$WV_DIR/stderr.run" < /dev/null 9>&- &
  else
    (
      [ -z "$WV_CG" ] || { printf '0\n' > "$WV_CG/cgroup.procs"; } 2>/dev/null
      exec timeout -k 10s "$TIMEOUT" "$INSTALL_PATH"
    ) >> "$WV_DIR/last.log" 2> "$WV_DIR/stderr.run" < /dev/null 9>&- &
  fi
  pid=$!
  # Until the wait below the process is there (a zombie at least): its start time reads.
  wv_pstat "$pid" && printf '%s %s %s\n' "$WV_BOOT" "$pid" "$WV_PSTART" > "$WV_DIR/pid.$$" &&
    mv -f "$WV_DIR/pid.$$" "$WV_DIR/pid"
  wait "$pid"
  code=$?
}

# The clock the lease check read moments ago, if it did.
start=${WV_NOW:-$(date +%s)}
wv_boot
WV_CG=
if wv_systemd && command -v systemd-run > /dev/null 2>&1; then
  wv_spawn scope
  if [ -e "$WV_DIR/scope.wait" ]; then
    # systemd-run could not make the scope: the script never started. It runs without
    # one (on a systemd host no cgroup directory is made: systemd owns the hierarchy).
    rm -f "$WV_DIR/scope.wait"
    wv_may_run || exit 78
    wv_spawn dir
  fi
else
  wv_cg_make
  wv_spawn dir
  [ -z "$WV_CG" ] || rmdir "$WV_CG" "${WV_CG%/*}" 2> /dev/null
fi
end=$(date +%s)
if [ -f "$WV_DIR/stderr.run" ]; then
  [ ! -s "$WV_DIR/stderr.run" ] || cat "$WV_DIR/stderr.run" >> "$WV_DIR/last.log"
  # A failed run: one `start end exit run_id <hex of its stderr's last lines>` line in
  # failed.log (the probe reports it as the run's evidence), the last 64 kept.
  if [ "$code" != 0 ]; then
    _tail=$(tail -n 8 "$WV_DIR/stderr.run" | tail -c 800 | od -An -v -tx1 | tr -d ' \n')
    printf '%s %s %s %s %s\n' "$start" "$end" "$code" "$RUN_ID" "${_tail:--}" >> "$WV_DIR/failed.log"
    if [ "$(wc -l < "$WV_DIR/failed.log")" -gt 64 ]; then
      tail -n 32 "$WV_DIR/failed.log" > "$WV_DIR/failed.log.tmp" && mv -f "$WV_DIR/failed.log.tmp" "$WV_DIR/failed.log"
    fi
  fi
fi
# The run is over: its pid file and its stderr file go, with one command.
rm -f "$WV_DIR/pid" "$WV_DIR/stderr.run"
printf '%s %s %s %s\n' "$start" "$end" "$code" "$RUN_ID" >> "$WV_DIR/runs.log"
exit "$code"

# --- probe: $1 NAME, $2 RUN_ID, $3 LEASE_SECS (0: no renewal), $4 CHECK_TIMEOUT, then
# pairs CHECK_NAME CHECK_COMMAND. One tagged line per fact, hex for anything free-form,
# `end` last. Every check reports exactly one `check` line.
wv_init "$1"
RUN=$2 LEASE=$3 CT=$4
wv_run_ok "$RUN" || wv_die "invalid run id" 65
wv_num "$LEASE" || wv_die "invalid lease" 65
shift 4
T=$(mktemp -d 2>/dev/null) || T=
[ -n "$T" ] && trap 'rm -rf "$T"' EXIT

# wv_check_line NAME RC < OUTPUT: one `check` line with the last line of OUTPUT (RC `-`:
# no result, OUTPUT says why).
wv_check_line() {
  _co=$(tail -n 1 | head -c 400 | od -An -v -tx1 | tr -d ' \n')
  printf 'check %s %s %s\n' "$(wv_hex "$1")" "$2" "${_co:--}"
}

# Custom checks first, all at once, each under its own timeout. With a temp dir their
# output and exit code go to files and are reported at the end; without one each check
# keeps its output in memory and prints its line itself when it ends (one short write).
k=0
n=0
for a; do
  k=$((k + 1))
  if [ $((k % 2)) = 1 ]; then cname=$a; continue; fi
  n=$((n + 1))
  if [ -n "$T" ]; then
    (
      timeout -k 1s "$CT" sh -c "$a" > "$T/$n.out" 2>&1 < /dev/null
      echo "$?" > "$T/$n.rc"
    ) &
  else
    (
      o=$(timeout -k 1s "$CT" sh -c "$a" 2>&1 < /dev/null)
      rc=$?
      printf '%s' "$o" | wv_check_line "$cname" "$rc"
    ) &
  fi
done

# The lease of RUN_ID, renewed (host clock) while the host holds it in probation.
if [ "$LEASE" -gt 0 ]; then
  (
    wv_facts
    if [ "$WV_OWNER" = "$RUN" ] && [ "$WV_ST" = probation ] && [ "${WV_TX:-$RUN}" = "$RUN" ] && wv_lock 1; then
      wv_facts
      [ "$WV_OWNER" = "$RUN" ] && [ "$WV_ST" = probation ] && [ "${WV_TX:-$RUN}" = "$RUN" ] &&
        wv_put "$WV_LEASE" "$(($(date +%s) + LEASE))$WV_NL"
    fi
  )
fi

if { read -r l1 _rest < /proc/loadavg; } 2>/dev/null; then printf 'load1 %s\n' "$l1"; fi
b=$(sed -n 's/^procs_blocked \([0-9]*\).*/\1/p' /proc/stat 2>/dev/null)
[ -n "$b" ] && printf 'blocked %s\n' "$b"

KPAT='blocked for more than [0-9]+ seconds|hung_task|Oops|BUG:|kernel BUG|soft lockup|hard LOCKUP|general protection fault|Kernel panic'
KLOG=
if [ -n "$T" ]; then
  if dmesg > "$T/kernel" 2>/dev/null; then
    KLOG=$T/kernel
  elif [ -r /dev/kmsg ]; then
    dd if=/dev/kmsg of="$T/kernel" iflag=nonblock bs=65536 2>/dev/null
    [ -s "$T/kernel" ] && KLOG=$T/kernel
  fi
fi
if [ -n "$KLOG" ]; then
  printf 'kernel %s\n' "$(grep -acE "$KPAT" "$KLOG")"
  kl=$(grep -aE "$KPAT" "$KLOG" | tail -n 1 | head -c 400 | od -An -v -tx1 | tr -d ' \n')
  printf 'kernel_last %s\n' "${kl:--}"
else
  printf 'kernel none\n'
fi

if wv_systemd; then
  printf 'systemd 1\n'
  systemctl --failed --plain --no-legend 2>/dev/null | awk '{ u = $1; if (u == "●" || u == "*") u = $2; if (u != "") print "failed " u }'
fi

wv_facts
printf 'owner %s\n' "${WV_OWNER:--}"
st=$(wv_state)
printf 'state %s\n' "${st:-none}"
wv_lease_check
printf 'lease %s\n' "$WV_LEASE_UNTIL"
wv_reverted "$RUN"
wv_runs "$RUN"
printf 'running %s\n' "$(wv_running)"

wait
if [ -n "$T" ]; then
  k=0
  i=0
  for a; do
    k=$((k + 1))
    [ $((k % 2)) = 1 ] || continue
    i=$((i + 1))
    rc=$(cat "$T/$i.rc" 2>/dev/null)
    if wv_num "$rc"; then
      cat "$T/$i.out" 2>/dev/null | wv_check_line "$a" "$rc"
    else
      printf 'no result: the check left no exit status' | wv_check_line "$a" -
    fi
  done
fi
printf 'end\n'

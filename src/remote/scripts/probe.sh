# --- probe: $1 NAME, $2 RUN_ID, $3 LEASE_SECS (0: no renewal), $4 CHECK_TIMEOUT,
# $5 SOURCES (the signals' sources to read, space-separated: load blocked oom pressure
# kernel units), $6 KERNEL_CURSOR (`-`: none, take one), $7 KERNEL_PATTERNS (fixed
# strings, one per line), then pairs CHECK_NAME CHECK_COMMAND. One tagged line per fact,
# hex for anything free-form, `end` last. Every check reports exactly one `check` line;
# a source the host lacks is one `na SOURCE <hex why>` line.
wv_init "$1"
RUN=$2 LEASE=$3 CT=$4 SOURCES=" $5 " KCUR=$6 KPAT=$7
wv_run_ok "$RUN" || wv_die "invalid run id" 65
wv_num "$LEASE" || wv_die "invalid lease" 65
shift 7
wv_want() { case $SOURCES in *" $1 "*) return 0 ;; esac; return 1; }
# wv_check_out NAME RC OUTPUT: one `check` line with OUTPUT's last line (at most its
# first 400 bytes). No command runs for an empty output.
wv_check_out() {
  WV_HEX=
  _cl=${3##*"$WV_NL"}
  [ -z "$_cl" ] || wv_hexj "$(printf '%s' "$_cl" | od -An -v -tx1 -N 400)"
  _co=$WV_HEX
  wv_hexv "$1"
  printf 'check %s %s %s\n' "$WV_HEX" "$2" "${_co:--}"
}

# Custom checks first, all at once, each under its own timeout, its output kept in
# memory; each prints its line itself when it ends (one short write).
k=0
for a; do
  k=$((k + 1))
  if [ $((k % 2)) = 1 ]; then cname=$a; continue; fi
  (
    o=$(timeout -k 1s "$CT" sh -c "$a" 2>&1 < /dev/null)
    wv_check_out "$cname" "$?" "$o"
  ) &
done

# The host clock, read once: the lease's renewal and the `clock` line.
NOW=$(date +%s)
# The lease of RUN_ID, renewed (host clock) while the host holds it in probation.
if [ "$LEASE" -gt 0 ]; then
  (
    wv_facts
    if [ "$WV_OWNER" = "$RUN" ] && [ "$WV_ST" = probation ] && [ "${WV_TX:-$RUN}" = "$RUN" ] && wv_lock 1; then
      wv_facts
      [ "$WV_OWNER" = "$RUN" ] && [ "$WV_ST" = probation ] && [ "${WV_TX:-$RUN}" = "$RUN" ] &&
        wv_put "$WV_LEASE" "$((NOW + LEASE))$WV_NL"
    fi
  )
fi

{ read -r _up _idle < /proc/uptime; } 2>/dev/null && printf 'uptime %s\n' "$_up"
printf 'clock %s\n' "$NOW"

if wv_want load; then
  if { read -r l1 _rest < /proc/loadavg; } 2>/dev/null; then
    printf 'load1 %s\n' "$l1"
  else
    wv_out "na load" "/proc/loadavg is not readable"
  fi
  c=$(getconf _NPROCESSORS_ONLN 2>/dev/null) || c=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)
  wv_num "$c" && [ "$c" -gt 0 ] && printf 'cpus %s\n' "$c"
fi
if wv_want blocked; then
  b=$(sed -n 's/^procs_blocked \([0-9]*\).*/\1/p' /proc/stat 2>/dev/null)
  if wv_num "$b"; then printf 'blocked %s\n' "$b"; else wv_out "na blocked" "no procs_blocked in /proc/stat"; fi
fi
if wv_want oom; then
  o=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat 2>/dev/null)
  if wv_num "$o"; then printf 'oom_kill %s\n' "$o"; else wv_out "na oom" "no oom_kill in /proc/vmstat (a kernel before 4.13)"; fi
fi
if wv_want pressure; then
  p=
  for r in cpu memory io; do
    # The `some` line's last total= (read by the shell: two short lines).
    v=
    _n=0
    _pl=
    { while IFS= read -r _pl || [ -n "$_pl" ]; do
        case $_pl in
          "some "*total=*)
            _n=$((_n + 1))
            v=${_pl##*total=}
            v=${v%%[!0123456789]*}
            ;;
        esac
        _pl=
      done < "/proc/pressure/$r"; } 2>/dev/null
    [ "$_n" = 1 ] && wv_num "$v" || { p=; break; }
    p="$p $v"
  done
  if [ -n "$p" ]; then
    printf 'pressure%s\n' "$p"
  else
    wv_out "na pressure" "no /proc/pressure (a kernel without PSI, or booted with psi=0)"
  fi
fi

# The kernel log after the cursor (`<boot id>:<seconds since boot>` of the last line
# seen): the alert lines (any of KERNEL_PATTERNS), the last 10, and the new cursor. A
# cursor of another boot counts every line of this one; no cursor only takes one.
if wv_want kernel; then
  wv_word /proc/sys/kernel/random/boot_id
  _boot=$WV_VAL
  { dmesg 2>&1; printf 'wavectl-dmesg-rc %s\n' "$?"; } |
    WVK=$KPAT WVC=$KCUR WVB=$_boot awk '
      BEGIN {
        np = split(ENVIRON["WVK"], P, "\n")
        cur = ENVIRON["WVC"]; boot = ENVIRON["WVB"]
        taking = (cur == "-")
        k = index(cur, ":")
        same = !taking && k > 0 && substr(cur, 1, k - 1) == boot
        since = same ? substr(cur, k + 1) + 0 : -1
        last = 0; stamped = 0; lines = 0; hits = 0
      }
      /^wavectl-dmesg-rc [0-9]+$/ { rc = $2; next }
      {
        lines++
        if (!match($0, /^\[ *[0-9]+\.[0-9]+\]/)) { other = $0; next }
        ts = substr($0, 2, RLENGTH - 2) + 0
        stamped = 1
        if (ts > last) last = ts
        if (taking || ts <= since) next
        for (i = 1; i <= np; i++) {
          if (P[i] != "" && index($0, P[i])) { hits++; H[hits % 10] = $0; break }
        }
      }
      END {
        if (rc != 0) { print "kna dmesg failed (exit " rc "): " other; exit }
        if (lines > 0 && !stamped) { print "kna the kernel log has no timestamps (printk.time=0): no cursor"; exit }
        printf "kcursor %s:%.6f\n", boot, last
        printf "kcount %d\n", hits
        first = hits > 10 ? hits - 9 : 1
        for (j = first; j <= hits; j++) print "kline " H[j % 10]
      }' |
    while IFS= read -r _kl; do
      case $_kl in
        "kline "*) wv_out kline "${_kl#kline }" ;;
        "kna "*) wv_out "na kernel" "${_kl#kna }" ;;
        *) printf '%s\n' "$_kl" ;;
      esac
    done
fi

if wv_want units; then
  if wv_systemd; then
    printf 'systemd 1\n'
    systemctl --failed --plain --no-legend 2>/dev/null | awk '{ u = $1; if (u == "●" || u == "*") u = $2; if (u != "") print "failed " u }'
    # NRestarts of every loaded service, one block per unit: the ones that restarted.
    systemctl show --type=service --property=Id,NRestarts '*' 2>/dev/null |
      awk -F= '
        $1 == "Id" { id = $2 }
        $1 == "NRestarts" { n = $2 }
        NF == 0 { if (id != "" && n + 0 > 0) print "restarts " id " " n; id = ""; n = "" }
        END { if (id != "" && n + 0 > 0) print "restarts " id " " n }'
  else
    wv_out "na units" "systemd does not run here"
  fi
fi

wv_facts
printf 'owner %s\n' "${WV_OWNER:--}"
printf 'state %s\n' "${WV_ST:-none}"
wv_lease_read
printf 'lease %s\n' "$WV_LEASE_UNTIL"
wv_reverted "$RUN"
wv_runs "$RUN"
# The stderr tails of the failed runs of RUN (the last 5), from the wrapper's failed.log.
if [ -f "$WV_DIR/failed.log" ]; then
  WVR=$RUN awk '$4 == ENVIRON["WVR"] && NF == 5 { print "runerr " $1 " " $2 " " $3 " " $5 }' "$WV_DIR/failed.log" | tail -n 5
fi
printf 'running %s\n' "$(wv_running)"

wait
printf 'end\n'

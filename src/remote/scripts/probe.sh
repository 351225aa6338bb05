# --- probe: $1 NAME, $2 CHECK_TIMEOUT, then pairs CHECK_NAME CHECK_COMMAND.
# One tagged line per fact, hex for anything free-form, `end` last.
wv_init "$1"
CT=$2
shift 2
T=$(mktemp -d 2>/dev/null) || T=
[ -n "$T" ] && trap 'rm -rf "$T"' EXIT

# Custom checks first, all at once, each under its own timeout.
n=0
if [ -n "$T" ]; then
  while [ $# -ge 2 ]; do
    n=$((n + 1))
    printf '%s' "$1" > "$T/$n.name"
    (
      timeout -k 1s "$CT" sh -c "$2" > "$T/$n.out" 2>&1 < /dev/null
      echo "$?" > "$T/$n.rc"
    ) &
    shift 2
  done
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

[ -f "$WV_DIR/runs.log" ] && sed -n 's/^\([0-9][0-9]* [0-9][0-9]* -*[0-9][0-9]*\)$/run \1/p' "$WV_DIR/runs.log"

running=0
if [ -f "$WV_DIR/pid" ] && { IFS= read -r pid < "$WV_DIR/pid"; } 2>/dev/null; then
  case $pid in
    '' | *[!0123456789]*) ;;
    *)
      a0=$(tr '\0' '\n' 2>/dev/null < "/proc/$pid/cmdline" | head -n 1)
      case $a0 in timeout | */timeout) running=1 ;; esac
      ;;
  esac
fi
printf 'running %s\n' "$running"
st=$(wv_state)
printf 'state %s\n' "${st:-none}"

wait
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  wv_read_file "$T/$i.name"
  rc=$(cat "$T/$i.rc" 2>/dev/null)
  case $rc in '' | *[!0123456789]*) rc=255 ;; esac
  out=$(tail -n 1 "$T/$i.out" 2>/dev/null | head -c 400 | od -An -v -tx1 | tr -d ' \n')
  printf 'check %s %s %s\n' "$(wv_hex "$WV_VAL")" "$rc" "${out:--}"
done
printf 'end\n'

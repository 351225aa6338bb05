# --- what probe and read_state report of NAME's state ---
# wv_reverted RUN: `reverted RUN <lease until> <reverted at> <clean>` if the guard's
# record (/var/lib/wavectl/.reverted/NAME) names RUN.
wv_reverted() {
  [ -f "$WV_REV" ] && { read -r _rr _rl _ra _rc < "$WV_REV"; } 2>/dev/null || return 0
  [ "$_rr" = "$1" ] && wv_num "$_rl" && wv_num "$_ra" || return 0
  case $_rc in 0 | 1) printf 'reverted %s %s %s %s\n' "$_rr" "$_rl" "$_ra" "$_rc" ;; esac
}
# wv_runs RUN: `run <start> <end> <exit>` for each runs.log line of RUN (a line of the
# 3-field format, before run ids were recorded, is run `-`).
wv_runs() {
  [ -f "$WV_DIR/runs.log" ] || return 0
  # A log of up to 16 lines is read by the shell (fields split as awk splits them);
  # a longer one by awk.
  _ro=
  _rn=0
  _r1=
  { while read -r _r1 _r2 _r3 _r4 _r5 || [ -n "$_r1" ]; do
      _rn=$((_rn + 1))
      [ "$_rn" -le 16 ] || break
      if [ -z "$_r5" ] && [ -n "$_r3" ] && [ "${_r4:--}" = "$1" ] && wv_num "$_r1" && wv_num "$_r2" &&
        wv_num "${_r3#-}"; then
        _ro="${_ro}run $_r1 $_r2 $_r3$WV_NL"
      fi
      _r1=
    done < "$WV_DIR/runs.log"; } 2>/dev/null
  if [ "$_rn" -le 16 ]; then
    printf '%s' "$_ro"
    return 0
  fi
  WVR=$1 awk '
    NF == 3 { $4 = "-" }
    (NF == 3 || NF == 4) && $4 == ENVIRON["WVR"] && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^-?[0-9]+$/ {
      print "run " $1 " " $2 " " $3
    }' "$WV_DIR/runs.log"
}
# wv_running: 1 if the wrapper's record (`BOOT PID START`) names a process of this boot
# that started when it says (the run's `timeout`), else 0.
wv_running() {
  _rn=0
  _rb=
  if [ -f "$WV_DIR/pid" ] && { read -r _rb _rp _rs _ < "$WV_DIR/pid"; } 2>/dev/null && wv_num "$_rp"; then
    wv_boot
    [ -z "$WV_BOOT" ] || [ "$_rb" != "$WV_BOOT" ] || ! wv_pstat "$_rp" ||
      [ "$WV_PSTART" != "$_rs" ] || [ "$WV_PSTATE" = Z ] || _rn=1
  fi
  printf '%s' "$_rn"
}

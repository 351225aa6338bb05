# --- wavectl shared library (constant POSIX sh; every value arrives as an argument) ---
# In front of every remote script and embedded in the on-host wrapper (procs.sh and
# removal.sh follow it where needed). Sets no umask and exports nothing, so the
# wrapper's script sees the caller's environment. Comment lines are dropped when
# embedded: never start a line inside a multi-line string with '#'.
set -u
PATH=${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WV_ROOT=/var/lib/wavectl
WV_UNITDIR=/etc/systemd/system
WV_NL='
'
WV_CLEAN=1

# wv_die MESSAGE [CODE]: the message on stderr and, hex, as `wavectl-error` on stdout.
wv_die() {
  printf 'wavectl: %s\n' "$1" >&2
  printf 'wavectl-error %s\n' "$(wv_hex "$1")"
  exit "${2:-1}"
}

# wv_init NAME: checks NAME again (defence in depth) and sets the paths of its files.
wv_init() {
  case $1 in
    '' | -* | *[!abcdefghijklmnopqrstuvwxyz0123456789-]*) wv_die "invalid name" 65 ;;
  esac
  [ "${#1}" -le 63 ] || wv_die "invalid name" 65
  WV_NAME=$1
  WV_DIR=$WV_ROOT/$1
  WV_MANIFEST=$WV_DIR/manifest.json
  WV_RUN=$WV_DIR/run
  WV_TXN=$WV_DIR/txn
  WV_LEASE=$WV_DIR/lease
  WV_PREV=$WV_DIR/prev
  WV_REV=$WV_ROOT/.reverted/$1
  WV_CRON=/etc/cron.d/wavectl-$1
  WV_UNIT=wavectl-$1
  WV_UNITS="$WV_UNIT.timer $WV_UNIT.service $WV_UNIT-guard.service $WV_UNIT-lease.timer $WV_UNIT-lease.service"
}

# wv_run_ok ID: a run id as wavectl makes them: [A-Za-z0-9][A-Za-z0-9_-]*, at most 128.
wv_run_ok() {
  case $1 in
    '' | [!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789]* | \
      *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-]*) return 1 ;;
  esac
  [ "${#1}" -le 128 ]
}
# wv_num X: X is a non-negative decimal number.
wv_num() { case $1 in '' | *[!0123456789]*) return 1 ;; esac; }

# wv_hex STRING: lowercase hex of its bytes, "-" for the empty string.
wv_hex() {
  if [ -z "$1" ]; then printf -; else printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; fi
}

# wv_out TAG VALUE: one report line, the value hex-encoded.
wv_out() { printf '%s %s\n' "$1" "$(wv_hex "$2")"; }
wv_problem() { WV_CLEAN=0; wv_out problem "$1"; }

wv_exists() { [ -e "$1" ] || [ -L "$1" ]; }
wv_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# wv_read_file FILE: its exact bytes (no trailing-newline loss) into WV_VAL.
wv_read_file() { WV_VAL=$(cat "$1" 2>/dev/null; printf x); WV_VAL=${WV_VAL%x}; }
# wv_word FILE: its first line (a run id, a number) into WV_VAL; empty if none.
wv_word() { WV_VAL=; { IFS= read -r WV_VAL < "$1"; } 2>/dev/null; :; }

# wv_sha FILE: its sha256 in hex (nothing if unreadable).
wv_sha() { _h=$(sha256sum < "$1" 2>/dev/null) || return 1; printf '%s' "${_h%% *}"; }

# wv_put FILE TEXT: TEXT written to FILE.tmp, renamed over FILE.
wv_put() { printf '%s' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1" || { rm -f "$1.tmp"; return 1; }; }

# --- the manifest ---
# Compact JSON written by serde_json: inside a JSON string every '"' is escaped, so
# '"KEY":"' can only be the real key. The nested "prev" object (always the last key)
# is cut off first, so a key names the top level.
# wv_mf KEY [FILE]: a top-level string field of a manifest (default: NAME's).
wv_mf() {
  [ -f "${2:-$WV_MANIFEST}" ] || return 0
  sed -n 's/,"prev":.*//; s/.*"'"$1"'":"\([^"\\]*\)".*/\1/p' "${2:-$WV_MANIFEST}" 2>/dev/null | head -n 1
}
wv_state() { wv_mf state; }
# wv_set_state NEW (a constant of ours): atomic rewrite.
wv_set_state() {
  [ -f "$WV_MANIFEST" ] || return 1
  sed 's/"state":"[a-z]*"/"state":"'"$1"'"/' "$WV_MANIFEST" > "$WV_MANIFEST.tmp" &&
    mv -f "$WV_MANIFEST.tmp" "$WV_MANIFEST"
}
# wv_facts: what NAME's state says: WV_OWNER (manifest run id), WV_ST (state),
# WV_TX (txn: the run whose install is in progress or was cut short), WV_PREVDIR and
# WV_PREVFOR (a complete snapshot of the previous version, and the run it was made for:
# prev/, or prev.new/ when an install was cut short between removing the older prev/
# and renaming the new one).
wv_facts() {
  WV_OWNER=$(wv_mf run_id)
  wv_run_ok "$WV_OWNER" || WV_OWNER=
  WV_ST=$(wv_state)
  wv_word "$WV_TXN"
  WV_TX=$WV_VAL
  [ -z "$WV_TX" ] || wv_run_ok "$WV_TX" || WV_TX=invalid
  WV_PREVFOR=
  WV_PREVDIR=$WV_PREV
  [ -d "$WV_PREV" ] || WV_PREVDIR=$WV_PREV.new
  if [ -f "$WV_PREVDIR/complete" ]; then
    wv_word "$WV_PREVDIR/for"
    wv_run_ok "$WV_VAL" && WV_PREVFOR=$WV_VAL
  fi
}

# wv_lock SECS: an exclusive lock on NAME's state (fd 8) against a concurrent install,
# removal, confirm, probe renewal or guard; 0 = do not wait. Fails if not had in time;
# succeeds without a lock where flock or the state directory is missing.
wv_lock() {
  [ -d "$WV_DIR" ] && command -v flock >/dev/null 2>&1 || return 0
  # `command`: a failed redirection of `exec` must not end the shell.
  command exec 8>> "$WV_DIR/state.lock" || return 0
  if [ "$1" = 0 ]; then flock -n 8; else flock -w "$1" 8; fi
}

# wv_lease_check: WV_LEASE_UNTIL (0: none) and WV_EXPIRED (1 if it ran out).
wv_lease_check() {
  wv_word "$WV_LEASE"
  WV_LEASE_UNTIL=$WV_VAL
  wv_num "$WV_LEASE_UNTIL" || WV_LEASE_UNTIL=0
  WV_EXPIRED=0
  [ "$WV_LEASE_UNTIL" -gt 0 ] && [ "$(date +%s)" -gt "$WV_LEASE_UNTIL" ] && WV_EXPIRED=1
  :
}

# --- activation ---
wv_drop_cron() {
  rm -f "/etc/cron.d/.$WV_UNIT.tmp"
  wv_exists "$WV_CRON" || return 0
  if rm -f "$WV_CRON"; then wv_out removed "$WV_CRON"; else wv_problem "cannot remove $WV_CRON"; fi
}
# wv_drop_units: stop, disable and delete all five units of NAME.
wv_drop_units() {
  _any=
  for _u in $WV_UNITS; do wv_exists "$WV_UNITDIR/$_u" && _any=1; done
  [ -n "$_any" ] || return 0
  if wv_systemd; then
    # --no-block, and never the guard's own services: a guard runs inside one of them.
    systemctl --no-block stop "$WV_UNIT.timer" "$WV_UNIT-lease.timer" "$WV_UNIT.service" >/dev/null 2>&1
    systemctl disable "$WV_UNIT.timer" "$WV_UNIT-lease.timer" "$WV_UNIT-guard.service" >/dev/null 2>&1
  fi
  for _u in $WV_UNITS; do
    rm -f "$WV_UNITDIR/$_u.tmp" "$WV_UNITDIR"/*.wants/"$_u"
    wv_exists "$WV_UNITDIR/$_u" || continue
    if rm -f "$WV_UNITDIR/$_u"; then
      wv_out removed "$WV_UNITDIR/$_u"
    else
      wv_problem "cannot remove $WV_UNITDIR/$_u"
    fi
  done
  if wv_systemd; then
    systemctl daemon-reload >/dev/null 2>&1 || wv_problem "systemctl daemon-reload failed"
    systemctl reset-failed "$WV_UNIT.service" >/dev/null 2>&1
  fi
}
# wv_write_cron SCHEDULE: /etc/cron.d/wavectl-NAME with the schedule line (none if
# SCHEDULE is empty), the lease guard every minute and the boot guard.
wv_write_cron() {
  _ct=/etc/cron.d/.$WV_UNIT.tmp
  (umask 022 && mkdir -p /etc/cron.d) || return 1
  {
    printf '# wavectl %s: written by wavectl, removed by its rollback or purge; do not edit\n' "$WV_NAME" &&
      printf 'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' &&
      { [ -z "$1" ] || printf '%s root %s\n' "$1" "$WV_RUN"; } &&
      printf '* * * * * root %s guard\n@reboot root %s guard boot\n' "$WV_RUN" "$WV_RUN"
  } > "$_ct" && chmod 0644 "$_ct" && mv -f "$_ct" "$WV_CRON" || { rm -f "$_ct"; return 1; }
}
# wv_write_units SCHEDULE: the boot guard service, the lease guard service and its
# minutely timer, and (SCHEDULE not empty) the script's service and timer.
wv_write_units() {
  (umask 022 && mkdir -p "$WV_UNITDIR") || return 1
  _U=$WV_UNITDIR/$WV_UNIT
  _ul=
  if [ -n "$1" ]; then
    printf '[Unit]\nDescription=wavectl: %s\n\n[Service]\nType=oneshot\nExecStart=%s\n' "$WV_NAME" "$WV_RUN" > "$_U.service.tmp" &&
      printf '[Unit]\nDescription=wavectl timer: %s\n\n[Timer]\nOnCalendar=%s\n\n[Install]\nWantedBy=timers.target\n' "$WV_NAME" "$1" > "$_U.timer.tmp" || return 1
    _ul=". .timer"
  fi
  printf '[Unit]\nDescription=wavectl boot guard: %s\nBefore=%s.timer\n\n[Service]\nType=oneshot\nExecStart=%s guard boot\n\n[Install]\nWantedBy=multi-user.target\n' "$WV_NAME" "$WV_UNIT" "$WV_RUN" > "$_U-guard.service.tmp" &&
    printf '[Unit]\nDescription=wavectl lease guard: %s\n\n[Service]\nType=oneshot\nExecStart=%s guard\n' "$WV_NAME" "$WV_RUN" > "$_U-lease.service.tmp" &&
    printf '[Unit]\nDescription=wavectl lease guard timer: %s\n\n[Timer]\nOnCalendar=minutely\nAccuracySec=5s\n\n[Install]\nWantedBy=timers.target\n' "$WV_NAME" > "$_U-lease.timer.tmp" || return 1
  # Timers last: nothing starts a service before it is in place.
  for _s in -guard.service -lease.service -lease.timer $_ul; do
    [ "$_s" = . ] && _s=.service
    chmod 0644 "$_U$_s.tmp" && mv -f "$_U$_s.tmp" "$_U$_s" || { rm -f "$_U$_s.tmp"; return 1; }
  done
}
# wv_enable_units: when systemd runs, reload it and enable what NAME's unit files hold.
wv_enable_units() {
  wv_systemd || return 0
  systemctl daemon-reload >/dev/null 2>&1 || return 1
  if [ -f "$WV_UNITDIR/$WV_UNIT-guard.service" ]; then
    systemctl enable "$WV_UNIT-guard.service" >/dev/null 2>&1 || return 1
  fi
  for _t in "$WV_UNIT.timer" "$WV_UNIT-lease.timer"; do
    [ -f "$WV_UNITDIR/$_t" ] || continue
    systemctl enable --now "$_t" >/dev/null 2>&1 || return 1
  done
}

# --- exact copies ---
# wv_xattrs FILE: its extended attributes (security.selinux aside), if getfattr exists.
wv_xattrs() {
  command -v getfattr >/dev/null 2>&1 || return 0
  getfattr -h -d -m - -e hex --absolute-names -- "$1" 2>/dev/null | sed 1d | grep -v '^security\.selinux='
}
# wv_same A B: B is an exact copy of A: for a symlink the same target; for a file the
# same bytes, mode, owner, mtime and extended attributes (file capabilities included).
wv_same() {
  if [ -L "$1" ]; then
    [ -L "$2" ] && [ "$(readlink "$1")" = "$(readlink "$2")" ]
    return
  fi
  [ -f "$1" ] && [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2" &&
    [ "$(stat -c '%a %u %g %Y' "$1")" = "$(stat -c '%a %u %g %Y' "$2")" ] &&
    [ "$(wv_xattrs "$1")" = "$(wv_xattrs "$2")" ]
}
# wv_copy SRC DST: an exact copy of SRC (a symlink: the link) put at DST: written beside
# it with `cp -a --preserve=all`, renamed over DST (over a symlink DST: the link itself,
# never into its target), verified.
wv_copy() {
  rm -f "$2.wavectl-restore"
  cp -a --preserve=all "$1" "$2.wavectl-restore" 2>/dev/null && mv -fT "$2.wavectl-restore" "$2" &&
    wv_same "$1" "$2" && return 0
  rm -f "$2.wavectl-restore"
  return 1
}

# --- created directories ---
# wv_rm_created_dirs INSTALL_PATH (gone): the directories the first install created
# (created_dirs holds the outermost; every one between it and INSTALL_PATH was made
# too), innermost first, each only if empty.
wv_rm_created_dirs() {
  [ -f "$WV_DIR/created_dirs" ] || return 0
  wv_read_file "$WV_DIR/created_dirs"
  _top=$WV_VAL
  case $1 in
    "$_top"/*) ;;
    *) wv_out note "created_dirs does not name a parent of the install path: kept every directory"; return 0 ;;
  esac
  _d=${1%/*}
  while [ -n "$_d" ]; do
    if [ -d "$_d" ] && [ ! -L "$_d" ]; then
      if rmdir "$_d" 2>/dev/null; then
        wv_out removed "$_d"
      else
        wv_out note "kept $_d: not empty"
        return 0
      fi
    fi
    [ "$_d" = "$_top" ] && return 0
    _d=${_d%/*}
  done
}

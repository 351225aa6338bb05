# --- wavectl shared library (constant POSIX sh; every value arrives as an argument) ---
# Used by the remote scripts and embedded in the on-host wrapper. Sets no umask and
# exports nothing, so the wrapper's script sees the caller's environment.
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
  exec 8>> "$WV_DIR/state.lock" || return 0
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

# --- processes ---
# wv_ppid PID: its parent into _pp.
wv_ppid() {
  _pp=
  { IFS= read -r _st < "/proc/$1/stat"; } 2>/dev/null || return 1
  _st=${_st##*) }
  set -- $_st
  _pp=$2
}
# wv_ancestors: " $$ parent grandparent ... " into WV_ANC.
wv_ancestors() {
  WV_ANC=" "
  _a=$$
  while [ -n "$_a" ] && [ "$_a" -gt 0 ] 2>/dev/null; do
    WV_ANC="$WV_ANC$_a "
    wv_ppid "$_a" || break
    _a=$_pp
  done
}
# wv_is_us PID: true for this shell, its ancestors and its descendants (subshells).
wv_is_us() {
  case $WV_ANC in *" $1 "*) return 0 ;; esac
  _u=$1
  while [ -n "$_u" ] && [ "$_u" -gt 1 ] 2>/dev/null; do
    [ "$_u" = "$$" ] && return 0
    wv_ppid "$_u" || return 1
    _u=$_pp
  done
  return 1
}
# wv_argv_match PID MAPPED...: argv[0] or argv[1] (or argv[2] after an option, as
# `#!/bin/sh -e` gives) equals one of the paths. Paths and argv are compared with
# '\n' mapped to '\001', so any path but one holding '\001' compares exactly.
wv_argv_match() {
  _cl=$(tr '\n\0' '\001\n' 2>/dev/null < "/proc/$1/cmdline") || return 1
  [ -n "$_cl" ] || return 1
  _a0=${_cl%%"$WV_NL"*}
  _a1=
  _a2=
  case $_cl in
    *"$WV_NL"*)
      _r=${_cl#*"$WV_NL"}
      _a1=${_r%%"$WV_NL"*}
      case $_r in *"$WV_NL"*) _r=${_r#*"$WV_NL"}; _a2=${_r%%"$WV_NL"*} ;; esac
      ;;
  esac
  shift
  for _m in "$@"; do
    [ -n "$_m" ] || continue
    [ "$_a0" = "$_m" ] && return 0
    [ "$_a1" = "$_m" ] && return 0
    case $_a1 in -*) [ "$_a2" = "$_m" ] && return 0 ;; esac
  done
  return 1
}
# wv_match_procs PATH_A PATH_B: the pids (into WV_HITS, space-separated) whose argv[0],
# or argv[1] (argv[2] after an option), is PATH_A or PATH_B, or that have either file
# open or as their executable; an empty path matches nothing. Never this shell, its
# ancestors or its subshells.
wv_match_procs() {
  WV_HITS=
  [ -n "${WV_ANC:-}" ] || wv_ancestors
  _mpfa=$1
  _mpfb=$2
  _mpa=
  _mpb=
  [ -z "$1" ] || _mpa=$(printf '%s' "$1" | tr '\n' '\001')
  [ -z "$2" ] || _mpb=$(printf '%s' "$2" | tr '\n' '\001')
  # grep -F reads a pattern with newlines as several: give it each path's first line.
  _mpga=${1%%"$WV_NL"*}
  _mpgb=${2%%"$WV_NL"*}
  set --
  [ -z "$_mpa" ] || set -- "$@" -e "$_mpga"
  [ -z "$_mpb" ] || set -- "$@" -e "$_mpgb"
  [ "$#" -gt 0 ] || return 0
  for _f in $(grep -lsF "$@" /proc/[0-9]*/cmdline); do
    _p=${_f#/proc/}
    _p=${_p%/cmdline}
    wv_is_us "$_p" && continue
    wv_argv_match "$_p" "$_mpa" "$_mpb" && WV_HITS="$WV_HITS $_p"
  done
  # A copy started through a relative path or a symlink names neither path: find it
  # by the file itself, which a shell keeps open while it runs the script (and which
  # is the executable of a binary).
  for _mpf in "$_mpfa" "$_mpfb"; do
    [ -n "$_mpf" ] && [ -f "$_mpf" ] || continue
    for _p in $(find -L /proc/[0-9]*/exe /proc/[0-9]*/fd -maxdepth 1 -samefile "$_mpf" 2>/dev/null | cut -d/ -f3 | sort -u); do
      wv_is_us "$_p" && continue
      case " $WV_HITS " in *" $_p "*) continue ;; esac
      # An exiting process (no command line left) is going anyway.
      [ -n "$(head -c 1 "/proc/$_p/cmdline" 2>/dev/null | tr '\0' x)" ] || continue
      WV_HITS="$WV_HITS $_p"
    done
  done
  return 0
}
# wv_kill_procs PIDFILE PATH_A PATH_B WAIT_SECS: SIGKILL the process group named in
# PIDFILE (may be empty or missing) and every process running PATH_A or PATH_B (see
# wv_match_procs; either may be empty), and their descendants (SIGSTOPped first, so
# none escapes by being reparented), never us or our parents; repeat until two passes
# in a row find nothing or WAIT_SECS pass.
# Sets WV_KILLED (distinct pids) and WV_LEFT (pids still there at the deadline).
wv_kill_procs() {
  WV_KILLED=0
  WV_LEFT=
  _klist=" "
  wv_ancestors
  _kpa=$2
  _kpb=$3
  _pg=
  if [ -n "$1" ] && [ -f "$1" ]; then
    { IFS= read -r _pg < "$1"; } 2>/dev/null
    case $_pg in '' | *[!0123456789]*) _pg= ;; esac
  fi
  _deadline=$(($(date +%s) + $4))
  _quiet=0
  while :; do
    wv_match_procs "$_kpa" "$_kpb"
    _hits=$WV_HITS
    if [ -n "$_pg" ]; then
      kill -KILL -- "-$_pg" 2>/dev/null
      for _s in /proc/[0-9]*/stat; do
        { IFS= read -r _st < "$_s"; } 2>/dev/null || continue
        _st=${_st##*) }
        set -- $_st
        [ "$3" = "$_pg" ] && [ "$1" != Z ] || continue
        _p=${_s#/proc/}
        _hits="$_hits ${_p%/stat}"
      done
    fi
    # Freeze what matched, then its descendants (found before anyone is reparented),
    # then kill them all.
    _set=" "
    for _p in $_hits; do
      wv_is_us "$_p" && continue
      case $_set in *" $_p "*) continue ;; esac
      kill -STOP "$_p" 2>/dev/null && _set="$_set$_p "
    done
    _grew=1
    while [ "$_set" != " " ] && [ -n "$_grew" ]; do
      _grew=
      for _s in /proc/[0-9]*/stat; do
        { IFS= read -r _st < "$_s"; } 2>/dev/null || continue
        _st=${_st##*) }
        set -- $_st
        case $_set in *" $2 "*) ;; *) continue ;; esac
        [ "$1" != Z ] || continue
        _p=${_s#/proc/}
        _p=${_p%/stat}
        case $_set in *" $_p "*) continue ;; esac
        wv_is_us "$_p" && continue
        kill -STOP "$_p" 2>/dev/null && _set="$_set$_p " _grew=1
      done
    done
    _live=
    for _p in $_set; do
      _live="$_live $_p"
      kill -KILL "$_p" 2>/dev/null || continue
      case $_klist in
        *" $_p "*) ;;
        *) _klist="$_klist$_p " WV_KILLED=$((WV_KILLED + 1)) ;;
      esac
    done
    if [ -z "$_live" ]; then
      _quiet=$((_quiet + 1))
      [ "$_quiet" -ge 2 ] && break
    else
      _quiet=0
    fi
    if [ "$(date +%s)" -ge "$_deadline" ]; then
      WV_LEFT=$_live
      break
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
}

# wv_kill_all INSTALL_PATH WAIT_SECS: wv_kill_procs for NAME: the pid file's process
# group, the wrapper, and INSTALL_PATH (may be empty: wrapper only).
wv_kill_all() { wv_kill_procs "$WV_DIR/pid" "$WV_RUN" "$1" "$2"; }

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

# --- removal ---
# wv_rm_ours PATH: delete PATH only if it is a version wavectl installed under NAME (its
# sha256 is in sha256s); a file someone changed since is kept and noted.
wv_rm_ours() {
  wv_exists "$1" || return 0
  _h=
  [ -f "$1" ] && [ ! -L "$1" ] && _h=$(wv_sha "$1")
  if [ -n "$_h" ] && grep -qx "$_h" "$WV_DIR/sha256s" 2>/dev/null; then
    if rm -f "$1"; then wv_out removed "$1"; else wv_problem "cannot remove $1"; fi
  else
    wv_out note "kept $1: not a version wavectl installed (changed since?)"
  fi
}
# wv_restore_original INSTALL_PATH: the pre-wavectl file back (an exact copy of the
# backup), or without a backup the script deleted (wv_rm_ours).
wv_restore_original() {
  WV_RESTORED=0
  if wv_exists "$WV_DIR/backup"; then
    if [ -z "$1" ]; then
      wv_problem "a backup exists but the install path is unknown"
    elif wv_copy "$WV_DIR/backup" "$1"; then
      WV_RESTORED=1
    else
      wv_problem "cannot restore the backup to $1 exactly"
    fi
  elif [ -n "$1" ]; then
    wv_rm_ours "$1"
  fi
}
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

# wv_remove_full INSTALL_PATH WAIT_SECS SCOPE(run|all): every version of NAME removed and
# the pre-wavectl original restored, one report line per fact; goes on after any
# failure; deletes the state directory (prev/, lease, txn with it) only when everything
# checked out, so a retry still has the backup. INSTALL_PATH may be empty: read from
# the state directory.
wv_remove_full() {
  _ip=$1
  if [ -z "$_ip" ] && [ -f "$WV_DIR/install_path" ]; then
    wv_read_file "$WV_DIR/install_path"
    _ip=$WV_VAL
  fi
  _ours=
  if [ -d "$WV_DIR" ]; then _ours=1; wv_out found "$WV_DIR"; fi
  for _u in $WV_UNITS; do wv_exists "$WV_UNITDIR/$_u" && wv_out found "$WV_UNITDIR/$_u"; done
  wv_exists "$WV_CRON" && wv_out found "$WV_CRON"
  [ -n "$_ip" ] && wv_exists "$_ip.wavectl-new" && wv_out found "$_ip.wavectl-new"
  if [ -f "$WV_MANIFEST" ]; then
    wv_set_state revoked || wv_problem "cannot mark the manifest revoked"
  fi
  wv_drop_cron
  wv_drop_units
  # Copies of the install path are ours to kill, unless the pre-wavectl original still
  # stands there (an install cut short before its rename).
  _kip=
  if [ -n "$_ours" ] && [ -n "$_ip" ]; then
    _kip=$_ip
    wv_exists "$WV_DIR/backup" && wv_same "$WV_DIR/backup" "$_ip" && _kip=
  fi
  wv_kill_all "$_kip" "$2"
  printf 'killed %s\n' "$WV_KILLED"
  [ -z "$WV_LEFT" ] || wv_problem "still running after SIGKILL:$WV_LEFT"
  WV_RESTORED=0
  if [ -n "$_ours" ]; then
    if [ -z "$_ip" ]; then
      wv_exists "$WV_DIR/backup" && wv_problem "a backup exists but the install path is unknown"
      wv_out note "install path unknown: the script file was not checked"
    else
      wv_restore_original "$_ip"
    fi
  fi
  printf 'restored %s\n' "$WV_RESTORED"
  if [ -n "$_ip" ] && wv_exists "$_ip.wavectl-new"; then
    if rm -f "$_ip.wavectl-new"; then wv_out removed "$_ip.wavectl-new"; else wv_problem "cannot remove $_ip.wavectl-new"; fi
  fi
  [ -n "$_ours" ] && [ -n "$_ip" ] && ! wv_exists "$_ip" && wv_rm_created_dirs "$_ip"
  # Verify what must be gone.
  wv_exists "$WV_CRON" && wv_problem "$WV_CRON is still there"
  for _u in $WV_UNITS; do wv_exists "$WV_UNITDIR/$_u" && wv_problem "$WV_UNITDIR/$_u is still there"; done
  if [ "$3" = all ] && wv_exists "$WV_REV"; then
    if rm -f "$WV_REV"; then wv_out removed "$WV_REV"; else wv_problem "cannot remove $WV_REV"; fi
  fi
  if [ -n "$_ours" ]; then
    if [ "$WV_CLEAN" = 1 ]; then
      rm -rf "$WV_DIR"
      if wv_exists "$WV_DIR"; then wv_problem "cannot remove $WV_DIR"; else wv_out removed "$WV_DIR"; fi
    else
      wv_out note "kept $WV_DIR (state revoked) for a retry"
    fi
  fi
}

# wv_restore_prev RUN INSTALL_PATH WAIT_SECS: RUN's install undone by bringing back the
# version it replaced, whole, from $WV_PREVDIR (complete, made for RUN).
wv_restore_prev() {
  _P=$WV_PREVDIR
  _pr=$(wv_mf run_id "$_P/manifest.json")
  _ps=$(wv_mf sha256 "$_P/manifest.json")
  wv_out found "$WV_DIR"
  wv_exists "$WV_CRON" && wv_out found "$WV_CRON"
  for _u in $WV_UNITS; do wv_exists "$WV_UNITDIR/$_u" && wv_out found "$WV_UNITDIR/$_u"; done
  # Revoked first (the wrapper refuses), whoever's manifest it is: prev's comes back last.
  if [ -f "$WV_MANIFEST" ]; then
    wv_set_state revoked || wv_problem "cannot mark the manifest revoked"
  fi
  wv_drop_cron
  wv_drop_units
  if [ "$WV_OWNER" = "$1" ]; then
    wv_kill_all "$2" "$3"
    printf 'killed %s\n' "$WV_KILLED"
    [ -z "$WV_LEFT" ] || wv_problem "still running after SIGKILL:$WV_LEFT"
  else
    # The manifest is still the previous version's: no copy of RUN can have started.
    printf 'killed 0\n'
  fi
  if [ -z "$2" ]; then
    wv_problem "the install path is unknown: run $_pr's script was not restored"
  elif [ -e "$_P/script.none" ]; then
    wv_rm_ours "$2"
  elif wv_copy "$_P/script" "$2"; then
    _h=$(wv_sha "$2")
    [ "$_h" = "$_ps" ] ||
      wv_out note "restored $2 as it stood before run $1; its sha256 $_h is not the $_ps run $_pr installed (changed on the host since?)"
  else
    wv_problem "cannot restore run $_pr's script to $2 exactly"
  fi
  if [ -n "$2" ] && wv_exists "$2.wavectl-new"; then
    if rm -f "$2.wavectl-new"; then wv_out removed "$2.wavectl-new"; else wv_problem "cannot remove $2.wavectl-new"; fi
  fi
  for _f in run runs.log; do
    if [ -f "$_P/$_f" ]; then
      wv_copy "$_P/$_f" "$WV_DIR/$_f" || wv_problem "cannot restore run $_pr's $_f"
    elif ! rm -f "$WV_DIR/$_f"; then
      wv_problem "cannot remove $WV_DIR/$_f"
    fi
  done
  if [ -f "$_P/cron" ]; then
    (umask 022 && mkdir -p /etc/cron.d) && wv_copy "$_P/cron" "$WV_CRON" || wv_problem "cannot restore $WV_CRON"
  fi
  _pu=
  for _u in $WV_UNITS; do
    [ -f "$_P/units/$_u" ] || continue
    _pu=1
    (umask 022 && mkdir -p "$WV_UNITDIR") && wv_copy "$_P/units/$_u" "$WV_UNITDIR/$_u" ||
      wv_problem "cannot restore $WV_UNITDIR/$_u"
  done
  [ -z "$_pu" ] || wv_enable_units || wv_problem "cannot enable run $_pr's systemd units"
  # Its manifest (confirmed) last, and only over a complete restore.
  if [ "$WV_CLEAN" = 1 ]; then
    if wv_copy "$_P/manifest.json" "$WV_MANIFEST"; then
      wv_out restored-version "$_pr"
      rm -f "$WV_LEASE"
      rm -rf "$WV_PREV" "$WV_PREV.new"
      rm -f "$WV_TXN"
      for _f in "$WV_LEASE" "$WV_PREV" "$WV_PREV.new" "$WV_TXN"; do
        wv_exists "$_f" && wv_problem "cannot remove $_f"
      done
    else
      wv_problem "cannot restore run $_pr's manifest"
    fi
  fi
  [ "$WV_CLEAN" = 1 ] || wv_out note "kept $WV_DIR (state revoked, the previous version in ${_P##*/}/) for a retry"
  printf 'restored 0\n'
}

# wv_abort_txn INSTALL_PATH: RUN's install was cut short before it changed anything
# of the version in place (its snapshot was never completed): its leftovers go.
wv_abort_txn() {
  wv_out found "$WV_TXN"
  rm -rf "$WV_PREV.new"
  if [ -n "$1" ] && wv_exists "$1.wavectl-new"; then
    if rm -f "$1.wavectl-new"; then wv_out removed "$1.wavectl-new"; else wv_problem "cannot remove $1.wavectl-new"; fi
  fi
  [ "$WV_ST" = probation ] || rm -f "$WV_LEASE"
  rm -f "$WV_TXN"
  for _f in "$WV_PREV.new" "$WV_TXN"; do wv_exists "$_f" && wv_problem "cannot remove $_f"; done
  wv_out note "the install of run $WV_TX was cut short before it changed run $WV_OWNER's version: nothing to restore"
  printf 'killed 0\nrestored 0\n'
}

# wv_remove_run RUN INSTALL_PATH WAIT_SECS: undo RUN's install, and only RUN's. The host
# is RUN's if txn names RUN, or (no txn) the manifest does; otherwise nothing is touched
# and `other <hex run id> <state>` says what holds it. RUN's install over an earlier
# confirmed version brings that version back whole (prev/); otherwise everything goes.
wv_remove_run() {
  wv_facts
  _rip=$2
  if [ -z "$_rip" ] && [ -f "$WV_DIR/install_path" ]; then
    wv_read_file "$WV_DIR/install_path"
    _rip=$WV_VAL
  fi
  _own=${WV_TX:-$WV_OWNER}
  if [ "$_own" != "$1" ]; then
    if [ -n "$_own" ]; then
      _ost=${WV_ST:-none}
      [ -z "$WV_TX" ] || _ost=installing
      printf 'other %s %s\n' "$(wv_hex "$_own")" "$_ost"
    elif [ -d "$WV_DIR" ]; then
      wv_out note "$WV_DIR holds no run's install: left alone"
    fi
    printf 'killed 0\nrestored 0\n'
  elif [ "$WV_PREVFOR" = "$1" ]; then
    wv_restore_prev "$1" "$_rip" "$3"
  elif [ -n "$WV_OWNER" ] && [ "$WV_OWNER" != "$1" ]; then
    wv_abort_txn "$_rip"
  else
    wv_remove_full "$_rip" "$3" run
  fi
}

# --- the guard ---
# wv_guard_pick [boot]: the run to revert into WV_GR (and why into WV_GWHY): an install
# cut short (txn not the manifest's run) or in probation, whose lease ran out — or at
# boot whatever its lease; at boot also a removal left unfinished (revoked).
wv_guard_pick() {
  WV_GR=
  WV_GWHY=
  if [ -n "$WV_TX" ] && [ "$WV_TX" != "$WV_OWNER" ]; then
    WV_GR=$WV_TX WV_GWHY="its install was cut short"
  elif [ "$WV_ST" = probation ]; then
    WV_GR=$WV_OWNER WV_GWHY="in probation"
  elif [ "$WV_ST" = revoked ] && [ "$1" = boot ]; then
    WV_GR=$WV_OWNER WV_GWHY="its removal was unfinished (revoked)"
  fi
  [ -n "$WV_GR" ] && [ "$WV_GR" != invalid ] || return 1
  wv_lease_check
  if [ "$1" = boot ]; then
    WV_GWHY="$WV_GWHY at boot"
  else
    [ "$WV_EXPIRED" = 1 ] || return 1
    WV_GWHY="$WV_GWHY; its lease expired at $WV_LEASE_UNTIL"
  fi
}
# wv_guard [boot]: `run guard` (every minute) and `run guard boot` (at boot). Reverts
# what wv_guard_pick names as a rollback of that run would, logs it, and records it in
# /var/lib/wavectl/.reverted/NAME: `<run id> <lease until> <reverted at> <clean 0|1>`.
wv_guard() {
  [ -d "$WV_DIR" ] || return 0
  wv_facts
  wv_guard_pick "$1" || return 0
  if [ "$1" = boot ]; then wv_lock 30; else wv_lock 0 || return 0; fi
  wv_facts
  wv_guard_pick "$1" || return 0
  _glog=/var/log/wavectl-guard.log
  { mkdir -p /var/log && : >> "$_glog"; } 2>/dev/null || _glog=/dev/null
  _now=$(date +%s)
  {
    printf '%s wavectl guard: %s run %s %s; reverting it\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$WV_GR" "$WV_GWHY"
    wv_remove_run "$WV_GR" "$INSTALL_PATH" 10
    printf '%s wavectl guard: %s run %s reverted, clean=%s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$WV_GR" "$WV_CLEAN"
  } >> "$_glog" 2>&1
  case $WV_GWHY in
    *revoked*) ;;
    *)
      mkdir -p "$WV_ROOT/.reverted" &&
        wv_put "$WV_REV" "$WV_GR $WV_LEASE_UNTIL $_now $WV_CLEAN$WV_NL"
      ;;
  esac
  logger -t wavectl "guard reverted $WV_NAME run $WV_GR ($WV_GWHY), clean=$WV_CLEAN" 2>/dev/null
  return 0
}

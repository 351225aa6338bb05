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

# wv_die MESSAGE [CODE]
wv_die() { printf 'wavectl: %s\n' "$1" >&2; exit "${2:-1}"; }

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
  WV_CRON=/etc/cron.d/wavectl-$1
  WV_UNIT=wavectl-$1
}

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

# wv_sha FILE: its sha256 in hex (nothing if unreadable).
wv_sha() { _h=$(sha256sum < "$1" 2>/dev/null) || return 1; printf '%s' "${_h%% *}"; }

# The manifest is compact JSON written by serde_json: inside a JSON string every '"'
# is escaped, so '"state":"' can only be the real key.
wv_state() {
  [ -f "$WV_MANIFEST" ] || return 0
  sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' "$WV_MANIFEST" 2>/dev/null | head -n 1
}
# wv_set_state NEW (a constant of ours): atomic rewrite.
wv_set_state() {
  [ -f "$WV_MANIFEST" ] || return 1
  sed 's/"state":"[a-z]*"/"state":"'"$1"'"/' "$WV_MANIFEST" > "$WV_MANIFEST.tmp" &&
    mv -f "$WV_MANIFEST.tmp" "$WV_MANIFEST"
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
wv_drop_units() {
  _any=
  for _u in "$WV_UNIT.timer" "$WV_UNIT.service" "$WV_UNIT-guard.service"; do
    wv_exists "$WV_UNITDIR/$_u" && _any=1
  done
  [ -n "$_any" ] || return 0
  if wv_systemd; then
    # --no-block: the boot guard runs inside a unit; waiting there could deadlock.
    systemctl --no-block stop "$WV_UNIT.timer" "$WV_UNIT.service" >/dev/null 2>&1
    systemctl disable "$WV_UNIT.timer" "$WV_UNIT-guard.service" >/dev/null 2>&1
  fi
  for _u in "$WV_UNIT.timer" "$WV_UNIT.service" "$WV_UNIT-guard.service"; do
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

# --- restore ---
# wv_same A B: same bytes (or, for symlinks, the same target).
wv_same() {
  if [ -L "$1" ]; then
    [ -L "$2" ] && [ "$(readlink "$1")" = "$(readlink "$2")" ]
  else
    [ ! -L "$2" ] && cmp -s "$1" "$2"
  fi
}
# wv_restore INSTALL_PATH: put the backup back (cp -Pp to a temp beside it, rename),
# or without a backup delete the script only if it is a version wavectl installed
# (its sha256 is in sha256s); a file someone changed since is kept and noted.
wv_restore() {
  WV_RESTORED=0
  if wv_exists "$WV_DIR/backup"; then
    if [ -z "$1" ]; then
      wv_problem "a backup exists but the install path is unknown"
      return
    fi
    rm -f "$1.wavectl-restore"
    if cp -Pp "$WV_DIR/backup" "$1.wavectl-restore" && mv -f "$1.wavectl-restore" "$1"; then
      if wv_same "$WV_DIR/backup" "$1"; then
        WV_RESTORED=1
      else
        wv_problem "restored $1 differs from the backup"
      fi
    else
      rm -f "$1.wavectl-restore"
      wv_problem "cannot restore the backup to $1"
    fi
  elif [ -n "$1" ] && wv_exists "$1"; then
    _h=$(wv_sha "$1")
    if [ -n "$_h" ] && grep -qx "$_h" "$WV_DIR/sha256s" 2>/dev/null; then
      if rm -f "$1"; then wv_out removed "$1"; else wv_problem "cannot remove $1"; fi
    else
      wv_out note "kept $1: not a version wavectl installed (changed since?)"
    fi
  fi
}

# wv_remove_all INSTALL_PATH WAIT_SECS: the whole removal, one report line per fact.
# INSTALL_PATH may be empty: then it is read from the state directory. Goes on
# after any failure; deletes the state directory only when everything checked out
# (so a retry still has the backup).
wv_remove_all() {
  _ip=$1
  if [ -z "$_ip" ] && [ -f "$WV_DIR/install_path" ]; then
    wv_read_file "$WV_DIR/install_path"
    _ip=$WV_VAL
  fi
  _ours=
  if [ -d "$WV_DIR" ]; then _ours=1; wv_out found "$WV_DIR"; fi
  for _f in "$WV_CRON" "$WV_UNITDIR/$WV_UNIT.timer" "$WV_UNITDIR/$WV_UNIT.service" \
    "$WV_UNITDIR/$WV_UNIT-guard.service"; do
    wv_exists "$_f" && wv_out found "$_f"
  done
  [ -n "$_ip" ] && wv_exists "$_ip.wavectl-new" && wv_out found "$_ip.wavectl-new"
  if [ -f "$WV_MANIFEST" ]; then
    wv_set_state revoked || wv_problem "cannot mark the manifest revoked"
  fi
  wv_drop_cron
  wv_drop_units
  _kip=
  [ -n "$_ours" ] && _kip=$_ip
  wv_kill_all "$_kip" "$2"
  printf 'killed %s\n' "$WV_KILLED"
  [ -z "$WV_LEFT" ] || wv_problem "still running after SIGKILL:$WV_LEFT"
  WV_RESTORED=0
  if [ -n "$_ours" ]; then
    if [ -z "$_ip" ]; then
      wv_exists "$WV_DIR/backup" && wv_problem "a backup exists but the install path is unknown"
      wv_out note "install path unknown: the script file was not checked"
    else
      wv_restore "$_ip"
    fi
  fi
  printf 'restored %s\n' "$WV_RESTORED"
  if [ -n "$_ip" ] && wv_exists "$_ip.wavectl-new"; then
    if rm -f "$_ip.wavectl-new"; then wv_out removed "$_ip.wavectl-new"; else wv_problem "cannot remove $_ip.wavectl-new"; fi
  fi
  # Verify what must be gone.
  for _f in "$WV_CRON" "$WV_UNITDIR/$WV_UNIT.timer" "$WV_UNITDIR/$WV_UNIT.service" \
    "$WV_UNITDIR/$WV_UNIT-guard.service"; do
    wv_exists "$_f" && wv_problem "$_f is still there"
  done
  if [ -n "$_ours" ]; then
    if [ "$WV_CLEAN" = 1 ]; then
      rm -rf "$WV_DIR"
      if wv_exists "$WV_DIR"; then wv_problem "cannot remove $WV_DIR"; else wv_out removed "$WV_DIR"; fi
    else
      wv_out note "kept $WV_DIR (state revoked) for a retry"
    fi
  fi
  printf 'clean %s\n' "$WV_CLEAN"
}

# wv_guard: at boot, an install still on probation (or half removed) is removed.
wv_guard() {
  _gs=$(wv_state)
  case $_gs in
    probation | revoked)
      {
        printf '%s wavectl guard: %s was %s at boot; removing it\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$_gs"
        wv_remove_all "$INSTALL_PATH" 10
        printf '%s wavectl guard: %s removal clean=%s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$WV_CLEAN"
      } >> /var/log/wavectl-guard.log 2>&1
      logger -t wavectl "boot guard removed $WV_NAME (state $_gs at boot), clean=$WV_CLEAN" 2>/dev/null
      ;;
  esac
  return 0
}

# --- processes: finding and killing what runs a path (removal, purge --path, the guard) ---
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
  case $1 in *"$WV_NL"*) _mpa=$(printf '%s' "$1" | tr '\n' '\001') ;; *) _mpa=$1 ;; esac
  case $2 in *"$WV_NL"*) _mpb=$(printf '%s' "$2" | tr '\n' '\001') ;; *) _mpb=$2 ;; esac
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
  # is the executable of a binary). One `find` for both files.
  set --
  for _mpf in "$_mpfa" "$_mpfb"; do
    [ -n "$_mpf" ] && [ -f "$_mpf" ] || continue
    [ "$#" = 0 ] || set -- "$@" -o
    set -- "$@" -samefile "$_mpf"
  done
  [ "$#" -gt 0 ] || return 0
  _mps=" "
  for _f in $(find -L /proc/[0-9]*/exe /proc/[0-9]*/fd -maxdepth 1 \( "$@" \) 2>/dev/null); do
    _p=${_f#/proc/}
    _p=${_p%%/*}
    case $_mps in *" $_p "*) continue ;; esac
    _mps="$_mps$_p "
    wv_is_us "$_p" && continue
    case " $WV_HITS " in *" $_p "*) continue ;; esac
    # An exiting process (no command line left) is going anyway; one gone already (the
    # find itself) needs no look.
    [ -e "/proc/$_p/cmdline" ] || continue
    [ -n "$(head -c 1 "/proc/$_p/cmdline" 2>/dev/null | tr '\0' x)" ] || continue
    WV_HITS="$WV_HITS $_p"
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
  # The deadline on the uptime (no fork; it never jumps), else the wall clock.
  _kwait=$4
  _kup=1
  wv_kclock
  _deadline=$((WV_T + _kwait))
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
    _kwas=$_kup
    wv_kclock
    # The uptime could not be read any more: the whole wait again, on the wall clock.
    [ "$_kwas" = "$_kup" ] || _deadline=$((WV_T + _kwait))
    if [ "$WV_T" -ge "$_deadline" ]; then
      WV_LEFT=$_live
      break
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
}

# wv_kclock: whole seconds into WV_T: the uptime while _kup is 1 and it can be read
# (else _kup becomes 0), the wall clock (`date +%s`) once _kup is 0.
wv_kclock() {
  if [ "$_kup" = 1 ]; then
    WV_T=
    { read -r WV_T _x < /proc/uptime; } 2>/dev/null
    WV_T=${WV_T%%.*}
    wv_num "$WV_T" && return 0
    _kup=0
  fi
  WV_T=$(date +%s)
}
# wv_kill_all INSTALL_PATH WAIT_SECS: wv_kill_procs for NAME: the pid file's process
# group, the wrapper, and INSTALL_PATH (may be empty: wrapper only).
wv_kill_all() { wv_kill_procs "$WV_DIR/pid" "$WV_RUN" "$1" "$2"; }

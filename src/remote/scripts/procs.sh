# --- processes: what is ours to kill, by cgroup or by proven identity (removal, purge
# --path, the wrapper's guard; the wrapper makes each run's cgroup) ---
# A process is ours if it is in one of NAME's cgroups (each run of the wrapper gets one:
# a transient systemd scope `wavectl-NAME_<pid>.scope`, or a cgroup directory
# `wavectl-NAME/run<pid>` under pid 1's own cgroup), if it is the `timeout` the wrapper
# recorded (pid + start time + boot id: a record from another boot is never used) or in
# its process group, if its script argument or executable *is* a path we name (never
# what a symlink there leads to), or if it descends from one of those. Every process is
# stopped before it is killed, and checked again once stopped: a pid reused meanwhile is
# let go, never killed.

# wv_ancestors: " $$ parent grandparent ... " into WV_ANC.
wv_ancestors() {
  WV_ANC=" "
  _a=$$
  while [ -n "$_a" ] && [ "$_a" -gt 0 ] 2>/dev/null; do
    WV_ANC="$WV_ANC$_a "
    wv_pstat "$_a" || break
    _a=$WV_PPID
  done
}
# wv_is_us PID: true for this shell, its ancestors and its descendants (subshells).
wv_is_us() {
  case $WV_ANC in *" $1 "*) return 0 ;; esac
  _u=$1
  while [ -n "$_u" ] && [ "$_u" -gt 1 ] 2>/dev/null; do
    [ "$_u" = "$$" ] && return 0
    wv_pstat "$_u" || return 1
    _u=$WV_PPID
  done
  return 1
}

# --- cgroups ---
# wv_cg_pat: the extended regex a line of /proc/PID/cgroup matches when PID is in one of
# NAME's cgroups (NAME is [a-z0-9-]: nothing in it is special), into WV_CGPAT.
wv_cg_pat() { WV_CGPAT="/wavectl-$WV_NAME(_[0-9]+\.scope|/run[0-9]+)(/|\$)"; }
# wv_cg_base: the directory under which this host's runs get their cgroups, into WV_CGB:
# pid 1's own cgroup (the host's subtree: freezing the host freezes them too) in the
# freezer hierarchy (cgroup v1), else in the unified one (v2). Fails if neither is
# mounted writable here.
wv_cg_base() {
  WV_CGB=
  _fz=
  _v2=
  while read -r _ _ _ _mr _mp _mo; do
    _t=${_mo#* - }
    case $_mr$_mp in *\\*) continue ;; esac
    case $_t in
      "cgroup "*) case ",${_t##* }," in *,freezer,*) [ -n "$_fz" ] || _fz="$_mr $_mp" ;; esac ;;
      "cgroup2 "*) [ -n "$_v2" ] || _v2="$_mr $_mp" ;;
    esac
  done 2>/dev/null < /proc/self/mountinfo
  _cfz=
  _cv2=
  while IFS=: read -r _ _cc _cp; do
    case ",$_cc," in
      ,,) _cv2=$_cp ;;
      *,freezer,*) _cfz=$_cp ;;
    esac
  done 2>/dev/null < /proc/1/cgroup
  for _m in "$_fz|$_cfz" "$_v2|$_cv2"; do
    _mm=${_m%%|*}
    _mc=${_m#*|}
    [ -n "$_mm" ] && [ -n "$_mc" ] || continue
    _mr=${_mm%% *}
    _mp=${_mm#* }
    [ "$_mr" = / ] || case $_mc in "$_mr" | "$_mr"/*) _mc=${_mc#"$_mr"} ;; *) continue ;; esac
    _d=${_mp%/}${_mc%/}
    if [ -w "$_d/cgroup.procs" ]; then
      WV_CGB=$_d
      return 0
    fi
  done
  return 1
}
# wv_cg_make: a cgroup directory of this run's own (wv_cg_base/wavectl-NAME/run<$$>) into
# WV_CG; empty where none can be made.
wv_cg_make() {
  WV_CG=
  wv_cg_base || return 0
  _cn=$WV_CGB/wavectl-$WV_NAME
  { [ -d "$_cn" ] || mkdir "$_cn"; } 2>/dev/null || return 0
  { [ -d "$_cn/run$$" ] || mkdir "$_cn/run$$"; } 2>/dev/null && WV_CG=$_cn/run$$
}
# wv_cg_prune: NAME's cgroup directories that no process is left in go.
wv_cg_prune() {
  wv_cg_base || return 0
  [ -d "$WV_CGB/wavectl-$WV_NAME" ] || return 0
  rmdir "$WV_CGB/wavectl-$WV_NAME"/run* "$WV_CGB/wavectl-$WV_NAME" 2>/dev/null
  :
}

# --- what runs a path ---
# wv_argv_match PID MAPPED...: its script argument — argv[1], or argv[2] after an option
# (`sh -e PATH`, `sh -c PATH`) — is one of the paths. Paths and argv are compared with
# '\n' mapped to '\001', so any path but one holding '\001' compares exactly.
wv_argv_match() {
  _cl=$(tr '\n\0' '\001\n' 2>/dev/null < "/proc/$1/cmdline") || return 1
  case $_cl in *"$WV_NL"*) ;; *) return 1 ;; esac
  _r=${_cl#*"$WV_NL"}
  _a1=${_r%%"$WV_NL"*}
  _a2=
  case $_r in *"$WV_NL"*) _r=${_r#*"$WV_NL"}; _a2=${_r%%"$WV_NL"*} ;; esac
  shift
  for _m in "$@"; do
    [ -n "$_m" ] || continue
    [ "$_a1" = "$_m" ] && return 0
    case $_a1 in -*) [ "$_a2" = "$_m" ] && return 0 ;; esac
  done
  return 1
}
# wv_file_id PATH: `DEV:INODE` of PATH into WV_VAL if it is a regular file, not a
# symlink (stat does not follow it); empty otherwise.
wv_file_id() {
  WV_VAL=
  [ -n "$1" ] && [ -f "$1" ] && [ ! -L "$1" ] || return 0
  WV_VAL=$(stat -c '%d:%i' -- "$1" 2>/dev/null) || WV_VAL=
}
# wv_runs_file PID IDS: PID has a file of IDS (`DEV:INODE ...`) as its executable or open
# (a shell keeps the script it runs open): a copy started through a relative path or a
# link to that very file. Never a file a symlink leads to: IDS are of regular files.
wv_runs_file() {
  _rf=$(find -L "/proc/$1/exe" "/proc/$1/fd" -maxdepth 1 -printf '%D:%i\n' 2>/dev/null) || :
  for _id in $2; do
    case $WV_NL$_rf$WV_NL in *"$WV_NL$_id$WV_NL"*) return 0 ;; esac
  done
  return 1
}
# wv_match_procs PATH_A PATH_B: the processes (into WV_HITS: ` KIND:PID` each, KIND `a`
# for a script argument, `i` for the file itself) running PATH_A or PATH_B (see
# wv_argv_match, wv_runs_file); an empty path matches nothing. Never this shell, its
# ancestors or its subshells.
wv_match_procs() {
  WV_HITS=
  [ -n "${WV_ANC:-}" ] || wv_ancestors
  _mpa=
  _mpb=
  case $1 in *"$WV_NL"*) _mpa=$(printf '%s' "$1" | tr '\n' '\001') ;; *) _mpa=$1 ;; esac
  case $2 in *"$WV_NL"*) _mpb=$(printf '%s' "$2" | tr '\n' '\001') ;; *) _mpb=$2 ;; esac
  wv_file_id "$1"
  WV_IDS=$WV_VAL
  wv_file_id "$2"
  WV_IDS="$WV_IDS $WV_VAL"
  # grep -F reads a pattern with newlines as several: give it each path's first line.
  _mpga=${1%%"$WV_NL"*}
  _mpgb=${2%%"$WV_NL"*}
  set --
  [ -z "$_mpa" ] || set -- "$@" -e "$_mpga"
  [ -z "$_mpb" ] || set -- "$@" -e "$_mpgb"
  if [ "$#" -gt 0 ]; then
    # /proc paths hold no blank.
    # shellcheck disable=SC2013
    for _f in $(grep -lsF "$@" /proc/[0-9]*/cmdline); do
      _p=${_f#/proc/}
      _p=${_p%/cmdline}
      wv_is_us "$_p" && continue
      wv_argv_match "$_p" "$_mpa" "$_mpb" && WV_HITS="$WV_HITS a:$_p"
    done
  fi
  # One `find` for every process: the executables and open files with an inode of those
  # files (-L: what each /proc link leads to; the paths named are never looked up).
  set --
  for _id in $WV_IDS; do
    [ "$#" = 0 ] || set -- "$@" -o
    set -- "$@" -inum "${_id#*:}"
  done
  [ "$#" -gt 0 ] || return 0
  _mps=" "
  # /proc paths hold no blank.
  # shellcheck disable=SC2044
  for _l in $(find -L /proc/[0-9]*/exe /proc/[0-9]*/fd -maxdepth 1 \( "$@" \) -printf '%D:%i:%p\n' 2>/dev/null); do
    _id=${_l%%:/proc/*}
    case " $WV_IDS " in *" $_id "*) ;; *) continue ;; esac
    _p=${_l#*:/proc/}
    _p=${_p%%/*}
    case $_mps in *" $_p "*) continue ;; esac
    _mps="$_mps$_p "
    wv_is_us "$_p" && continue
    case " $WV_HITS " in *":$_p "*) continue ;; esac
    WV_HITS="$WV_HITS i:$_p"
  done
  return 0
}

# --- killing ---
# wv_pidrec FILE: the wrapper's record (`BOOT PID START`) if it is of this boot and names
# a live process that started when it says (into WV_RP and WV_RS); a record from another
# boot, or of another form, is discarded unread (removed).
wv_pidrec() {
  WV_RP=
  WV_RS=
  [ -n "$1" ] && [ -f "$1" ] || return 1
  _rb=
  { read -r _rb _rp _rs _ < "$1"; } 2>/dev/null
  wv_boot
  if [ -z "$WV_BOOT" ] || [ "$_rb" != "$WV_BOOT" ]; then
    rm -f "$1"
    return 1
  fi
  wv_num "$_rp" && wv_num "$_rs" && wv_pstat "$_rp" && [ "$WV_PSTART" = "$_rs" ] || return 1
  WV_RP=$_rp
  WV_RS=$_rs
}
# wv_still KIND PID: PID (stopped) is still what made it a candidate: in NAME's cgroups
# (c), the recorded `timeout` (r) or in its process group (g), running a path named (a:
# its script argument, i: the file), a child of a process being killed (d).
wv_still() {
  wv_pstat "$2" || return 1
  case $1 in
    c) grep -qsE -- "$WV_CGPAT" "/proc/$2/cgroup" ;;
    r) [ "$WV_PSTART" = "$WV_RS" ] ;;
    g) [ -n "$WV_RP" ] && [ "$WV_PGRP" = "$WV_RP" ] ;;
    a) wv_argv_match "$2" "$_kma" "$_kmb" ;;
    i) wv_runs_file "$2" "$WV_IDS" ;;
    d) case $_set in *" $WV_PPID "*) ;; *) return 1 ;; esac ;;
    *) return 1 ;;
  esac
}
# wv_stop KIND PID: SIGSTOP a candidate and keep it (in _set) if it is still ours once
# stopped; a process that is not is let go again (SIGCONT). Never us or our parents.
wv_stop() {
  case $_set in *" $2 "*) return 0 ;; esac
  wv_is_us "$2" && return 1
  wv_pstat "$2" && [ "$WV_PSTATE" != Z ] || return 1
  kill -STOP "$2" 2>/dev/null || return 1
  if wv_still "$1" "$2"; then
    _set="$_set$2 "
    return 0
  fi
  kill -CONT "$2" 2>/dev/null
  return 1
}
# wv_kill_procs CGROUPS PIDREC PATH_A PATH_B WAIT_SECS: SIGKILL what is ours (see the top
# of this file): with CGROUPS 1 every process in NAME's cgroups; the live `timeout` that
# PIDREC records and its process group; every process running PATH_A or PATH_B (either
# may be empty); and their descendants — each stopped and checked first, so none
# escapes and no stranger is hit; never us or our parents. Repeats until two passes in
# a row find nothing or WAIT_SECS pass. Sets WV_KILLED (distinct pids) and WV_LEFT (pids
# still there at the deadline).
wv_kill_procs() {
  WV_KILLED=0
  WV_LEFT=
  _klist=" "
  wv_ancestors
  WV_CGPAT=
  [ "$1" != 1 ] || wv_cg_pat
  wv_pidrec "$2"
  _kma=$3
  _kmb=$4
  case $3 in *"$WV_NL"*) _kma=$(printf '%s' "$3" | tr '\n' '\001') ;; esac
  case $4 in *"$WV_NL"*) _kmb=$(printf '%s' "$4" | tr '\n' '\001') ;; esac
  _kpa=$3
  _kpb=$4
  # The deadline on the uptime (no fork; it never jumps), else the wall clock.
  _kwait=$5
  _kup=1
  wv_kclock
  _deadline=$((WV_T + _kwait))
  _quiet=0
  while :; do
    _cands=
    if [ -n "$WV_CGPAT" ]; then
      # /proc paths hold no blank.
      # shellcheck disable=SC2013
      for _f in $(grep -lsE -- "$WV_CGPAT" /proc/[0-9]*/cgroup); do
        _p=${_f#/proc/}
        _cands="$_cands c:${_p%/cgroup}"
      done
    fi
    if [ -n "$WV_RP" ]; then
      if wv_pstat "$WV_RP" && [ "$WV_PSTART" = "$WV_RS" ]; then
        _cands="$_cands r:$WV_RP"
        for _s in /proc/[0-9]*/stat; do
          _p=${_s#/proc/}
          _p=${_p%/stat}
          wv_pstat "$_p" && [ "$WV_PGRP" = "$WV_RP" ] && _cands="$_cands g:$_p"
        done
      else
        # Gone (or its pid taken by another process): never looked at again.
        WV_RP=
      fi
    fi
    wv_match_procs "$_kpa" "$_kpb"
    _cands="$_cands$WV_HITS"
    # Stop each (checked once stopped), then its descendants (found before anyone is
    # reparented), then kill them all.
    _set=" "
    for _c in $_cands; do wv_stop "${_c%%:*}" "${_c#*:}"; done
    _grew=1
    while [ "$_set" != " " ] && [ -n "$_grew" ]; do
      _grew=
      for _s in /proc/[0-9]*/stat; do
        _p=${_s#/proc/}
        _p=${_p%/stat}
        case $_set in *" $_p "*) continue ;; esac
        wv_pstat "$_p" || continue
        case $_set in *" $WV_PPID "*) wv_stop d "$_p" && _grew=1 ;; esac
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
  [ "$1" != 1 ] || wv_cg_prune
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
# wv_kill_all INSTALL_PATH WAIT_SECS: wv_kill_procs for NAME: its cgroups, the wrapper's
# record, the wrapper, and INSTALL_PATH (may be empty: the wrapper only).
wv_kill_all() { wv_kill_procs 1 "$WV_DIR/pid" "$WV_RUN" "$1" "$2"; }

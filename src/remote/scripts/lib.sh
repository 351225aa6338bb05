# --- wavectl shared library (constant POSIX sh; every value arrives as an argument) ---
# In front of every remote script and embedded in the on-host wrapper (procs.sh,
# activation.sh and removal.sh follow it where needed). Sets no umask and exports
# nothing, so the wrapper's script sees the caller's environment. Comment lines are
# dropped when embedded: never start a line inside a multi-line string with '#'.
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
  wv_hexv "$1"
  printf 'wavectl-error %s\n' "$WV_HEX"
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
  WV_NOW=
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

# wv_hexv STRING: lowercase hex of its bytes into WV_HEX, "-" for the empty string.
# Printable ASCII (what paths and messages mostly are) is encoded here, without a fork;
# anything else (a tab, a newline, a byte above 0x7e), or a long string, by `od`.
WV_ASCII=' !"#$%&'"'"'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~'
wv_hexv() {
  WV_HEX=-
  [ -n "$1" ] || return 0
  WV_HEX=
  _hs=$1
  [ "${#_hs}" -le 512 ] || _hs=
  while [ -n "$_hs" ]; do
    _hr=${_hs#?}
    _hc=${_hs%"$_hr"}
    _ht=${WV_ASCII%%"$_hc"*}
    [ "$_ht" != "$WV_ASCII" ] || break
    _hs=$_hr
    _hn=$((${#_ht} + 32))
    _hl=$((_hn % 16))
    case $_hl in 10) _hl=a ;; 11) _hl=b ;; 12) _hl=c ;; 13) _hl=d ;; 14) _hl=e ;; 15) _hl=f ;; esac
    WV_HEX=$WV_HEX$((_hn / 16))$_hl
  done
  [ -n "$_hs" ] || [ -z "$WV_HEX" ] || return 0
  wv_hexj "$(printf '%s' "$1" | od -An -v -tx1)"
}
# wv_hexj OD_OUTPUT: od's words joined (what `tr -d ' \n'` would leave) into WV_HEX.
wv_hexj() {
  WV_HEX=
  for _hw in $1; do WV_HEX=$WV_HEX$_hw; done
}
# wv_hex STRING: the same, printed.
wv_hex() { wv_hexv "$1"; printf '%s' "$WV_HEX"; }

# wv_out TAG VALUE: one report line, the value hex-encoded.
wv_out() { wv_hexv "$2"; printf '%s %s\n' "$1" "$WV_HEX"; }
wv_problem() { WV_CLEAN=0; wv_out problem "$1"; }

wv_exists() { [ -e "$1" ] || [ -L "$1" ]; }
wv_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
# wv_realdir DIR: DIR itself, not a symlink to one.
wv_realdir() { [ -d "$1" ] && [ ! -L "$1" ]; }

# wv_boot: the kernel's boot id into WV_BOOT (empty if it cannot be read).
wv_boot() { WV_BOOT=; { IFS= read -r WV_BOOT < /proc/sys/kernel/random/boot_id; } 2>/dev/null; :; }
# wv_pstat PID: what /proc/PID/stat says after the command name, read by the shell:
# WV_PSTATE, WV_PPID, WV_PGRP and WV_PSTART (field 22: its start, in clock ticks since
# boot; with the pid and the boot id it names one process). Fails if PID is gone.
wv_pstat() {
  # The whole file: the command name (any 15 bytes a process chose, a newline or ") "
  # among them) ends at the last ") ".
  _ps=
  _pl=
  { while IFS= read -r _pl; do _ps=$_ps$_pl$WV_NL; _pl=; done < "/proc/$1/stat"; } 2>/dev/null
  _ps=$_ps$_pl
  _ps=${_ps##*) }
  # Numbers and a state letter: split on blanks, no pattern can match.
  # shellcheck disable=SC2086
  set -- $_ps
  [ "$#" -ge 20 ] || return 1
  WV_PSTATE=$1 WV_PPID=$2 WV_PGRP=$3
  shift 19
  WV_PSTART=$1
}

# wv_read_file FILE: its exact bytes (no trailing-newline loss) into WV_VAL; read by
# the shell (a path, a small file of ours: no NUL byte).
wv_read_file() {
  WV_VAL=
  _rfl=
  { while IFS= read -r _rfl; do WV_VAL=$WV_VAL$_rfl$WV_NL; _rfl=; done < "$1"; } 2>/dev/null
  WV_VAL=$WV_VAL$_rfl
}
# wv_word FILE: its first line (a run id, a number) into WV_VAL; empty if none.
wv_word() { WV_VAL=; { IFS= read -r WV_VAL < "$1"; } 2>/dev/null; :; }

# wv_has_line FILE LINE: FILE has a line that is exactly LINE (a hex digest), as
# `grep -qx` says; a file of up to 16 lines is read by the shell.
wv_has_line() {
  [ -f "$1" ] || return 1
  _hln=0
  _hll=
  { while IFS= read -r _hll || [ -n "$_hll" ]; do
      [ "$_hll" != "$2" ] || return 0
      _hln=$((_hln + 1))
      [ "$_hln" -lt 16 ] || break
      _hll=
    done < "$1"; } 2>/dev/null
  [ "$_hln" -ge 16 ] && grep -qx "$2" "$1" 2>/dev/null
}

# wv_sha FILE: its sha256 in hex (nothing if unreadable).
wv_sha() { _h=$(sha256sum < "$1" 2>/dev/null) || return 1; printf '%s' "${_h%% *}"; }

# wv_put FILE TEXT: TEXT written to FILE.tmp, renamed over FILE (FILE in a directory
# only root may write: NAME's state directory, /etc/cron.d).
wv_put() { printf '%s' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1" || { rm -f "$1.tmp"; return 1; }; }

# --- the manifest ---
# /var/lib/wavectl/NAME/manifest.json: JSON, one top-level field a line (src/remote/
# manifest.rs renders and reads it): line 1 exactly `{`, then `"KEY": VALUE` with `,`
# on every line but the last, then `}`. A string value is escaped on its line (a `"`
# in it is `\"`), so a line that begins with `"KEY": ` is KEY's. The shell reads
# run_id, state and sha256 (plain words: one with `"` or `\` in it is read as none)
# and rewrites the values of state, backup and prev_* in place (wv_mfj_set).
# Earlier forms, kept (each with the wrapper that reads it) until an install replaces
# them, a rollback bringing them back as they were: `manifest`, one KEY=VALUE a line,
# `#` lines aside, keys in any order (the release before this one); and a
# manifest.json on one line, compact JSON, the nested "prev" object last (the one
# before that), read by wv_mf_json.
# wv_mf_read DIR: the manifest of a state directory (NAME's, or a prev/ snapshot), read
# once: WV_MFF its file ('' none; of two, the newer form: a one-field-a-line
# manifest.json, else `manifest`, else a compact manifest.json), WV_MFJ its form (2
# this release's, '' KEY=VALUE, 1 compact JSON), WV_MFR run_id, WV_MFS state, WV_MFH
# sha256.
wv_mf_read() {
  WV_MFR=
  WV_MFS=
  WV_MFH=
  WV_MFJ=
  WV_MFF=$1/manifest.json
  _k=
  { IFS= read -r _k < "$WV_MFF"; } 2>/dev/null
  if [ "$_k" = "{" ]; then
    WV_MFJ=2
    { while IFS= read -r _k || [ -n "$_k" ]; do
        case $_k in
          '"run_id": "'*) wv_jstr "$_k" && WV_MFR=$WV_VAL ;;
          '"state": "'*) wv_jstr "$_k" && WV_MFS=$WV_VAL ;;
          '"sha256": "'*) wv_jstr "$_k" && WV_MFH=$WV_VAL ;;
        esac
        _k=
      done < "$WV_MFF"; } 2>/dev/null
  elif [ -f "$1/manifest" ]; then
    WV_MFF=$1/manifest
    _k=
    { while IFS= read -r _k || [ -n "$_k" ]; do
        case $_k in
          run_id=*) WV_MFR=${_k#run_id=} ;;
          state=*) WV_MFS=${_k#state=} ;;
          sha256=*) WV_MFH=${_k#sha256=} ;;
        esac
        _k=
      done < "$WV_MFF"; } 2>/dev/null
  elif [ -f "$WV_MFF" ]; then
    WV_MFJ=1
    wv_mf_json
  else
    WV_MFF=
  fi
}
# wv_jstr LINE: the plain string value of a `"KEY": "VALUE"[,]` line into WV_VAL; fails
# (WV_VAL empty) if it has an escape or a `"` in it, or is no string.
wv_jstr() {
  WV_VAL=${1#*'": "'}
  WV_VAL=${WV_VAL%,}
  case $WV_VAL in
    *\"?* | *\\* | *[!\"] | '') WV_VAL=; return 1 ;;
  esac
  WV_VAL=${WV_VAL%'"'}
}
# wv_mf_json: the top-level run_id, state and sha256 of the JSON manifest WV_MFF, as the
# previous release read them: "prev" cut off, the first line that has '"KEY":"', there
# the last such key whose value has no '\' (inside a JSON string every '"' is escaped:
# it can only be the real key). One sed.
wv_mf_json() {
  _j=$(sed -n 's/,"prev":.*//;h;s/.*"run_id":"\([^"\\]*\)".*/r\1/p;g;s/.*"state":"\([^"\\]*\)".*/s\1/p;g;s/.*"sha256":"\([^"\\]*\)".*/h\1/p' "$WV_MFF" 2>/dev/null)
  _jk=
  _ifs=$IFS
  IFS=$WV_NL
  set -f
  for _l in $_j; do
    # The first line of each key only.
    _jt=${_l%"${_l#?}"}
    case $_jk in *"$_jt"*) continue ;; esac
    _jk=$_jk$_jt
    case $_jt in
      r) WV_MFR=${_l#r} ;;
      s) WV_MFS=${_l#s} ;;
      h) WV_MFH=${_l#h} ;;
    esac
  done
  set +f
  IFS=$_ifs
}
# wv_mf_set FILE KEY VALUE: the KEY=VALUE manifest FILE rewritten atomically with every line of a
# key matching the pattern KEY (a constant of ours) replaced by KEY=VALUE where the first
# stood (VALUE empty: removed); KEY=VALUE added last if none did. Fails, changing
# nothing, if FILE reads empty.
wv_mf_set() {
  _mo=
  _mk=
  _md=
  { while IFS= read -r _mk || [ -n "$_mk" ]; do
      # shellcheck disable=SC2254
      case $_mk in
        $2=*)
          [ -n "$_md" ] || [ -z "$3" ] || _mo=$_mo$2=$3$WV_NL
          _md=1
          ;;
        *) _mo=$_mo$_mk$WV_NL ;;
      esac
      _mk=
    done < "$1"; } 2>/dev/null
  [ -n "$_mo" ] || return 1
  [ -n "$_md" ] || [ -z "$3" ] || _mo=$_mo$2=$3$WV_NL
  wv_put "$1" "$_mo"
}
# wv_mfj_set FILE KEY VALUE: the manifest.json FILE (this release's form) rewritten
# atomically with the value of every line of a key matching the pattern KEY (a constant
# of ours) replaced by VALUE (a JSON literal of ours: `"word"`, `true`, `null`), its
# comma kept. Fails, changing nothing, if no line matched.
wv_mfj_set() {
  _mo=
  _mk=
  _md=
  { while IFS= read -r _mk || [ -n "$_mk" ]; do
      # shellcheck disable=SC2254
      case $_mk in
        \"$2\":\ *)
          _mt=
          case $_mk in *,) _mt=, ;; esac
          _mk=${_mk%%'": '*}'": '$3$_mt
          _md=1
          ;;
      esac
      _mo=$_mo$_mk$WV_NL
      _mk=
    done < "$1"; } 2>/dev/null
  [ -n "$_md" ] && wv_put "$1" "$_mo"
}
# wv_set_state NEW (a word of ours): NAME's manifest's state, rewritten atomically in the
# manifest's own format. Fails if there is none (WV_MFF then empty) or it cannot.
wv_set_state() {
  wv_mf_read "$WV_DIR"
  case $WV_MFJ in
    2) wv_mfj_set "$WV_MFF" state '"'"$1"'"' ;;
    1)
      sed 's/"state":"[a-z]*"/"state":"'"$1"'"/' "$WV_MFF" > "$WV_MFF.tmp" &&
        mv -f "$WV_MFF.tmp" "$WV_MFF"
      ;;
    *) [ -n "$WV_MFF" ] && wv_mf_set "$WV_MFF" state "$1" ;;
  esac
}
# wv_facts: what NAME's state says: WV_OWNER (manifest run id), WV_ST (state), WV_MFF
# and the rest of wv_mf_read, WV_TX (txn: the run whose install is in progress or was
# cut short), WV_PREVDIR and WV_PREVFOR (a complete snapshot of the previous version,
# and the run it was made for: prev/, or prev.new/ when an install was cut short
# between removing the older prev/ and renaming the new one).
wv_facts() {
  wv_mf_read "$WV_DIR"
  WV_OWNER=$WV_MFR
  wv_run_ok "$WV_OWNER" || WV_OWNER=
  WV_ST=$WV_MFS
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

# wv_lock SECS [shared]: a lock on NAME's state (fd 8): exclusive against a concurrent
# install, removal, confirm, probe renewal or guard; `shared` for a reader that must see
# the state whole (settle), which waits for those and does not hold up another reader.
# 0 = do not wait. Fails if not had in time; succeeds without a lock where flock or the
# state directory is missing (nothing of NAME's state to guard). Whoever also takes the
# host lock takes it first.
wv_lock() {
  wv_realdir "$WV_DIR" && command -v flock >/dev/null 2>&1 || return 0
  # `command`: a failed redirection of `exec` must not end the shell.
  command exec 8>> "$WV_DIR/state.lock" || return 1
  _lm=-x
  [ "${2:-}" != shared ] || _lm=-s
  if [ "$1" = 0 ]; then flock -n "$_lm" 8; else flock "$_lm" -w "$1" 8; fi
}
# wv_host_lock SECS: the host-wide lock (fd 7) under which decisions that span rollouts
# are taken (who owns an install_path): /run/wavectl.lock (/run is a tmpfs: nothing is
# left behind), else /var/lib/wavectl/.lock. Fails if not had in time.
wv_host_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  { command exec 7>> /run/wavectl.lock; } 2>/dev/null ||
    { { [ -d "$WV_ROOT" ] || mkdir -m 0700 "$WV_ROOT"; } && command exec 7>> "$WV_ROOT/.lock"; } || return 1
  flock -w "$1" 7
}
wv_host_unlock() { exec 7>&-; }

# --- purge fences ---
# A purge of NAME leaves /var/lib/wavectl/.fences/NAME (the purge's run id); a run that
# began before it may not install NAME here any more. Run ids begin with their start
# time, `YYYYMMDDTHHMMSSZ-`.
# wv_stamp RUN: that start as a number (YYYYMMDDHHMMSS) into WV_VAL; fails if RUN has none.
wv_stamp() {
  WV_VAL=${1%%-*}
  case $WV_VAL in
    [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;;
    *) WV_VAL=; return 1 ;;
  esac
  WV_VAL=${WV_VAL%Z}
  WV_VAL=${WV_VAL%T*}${WV_VAL#*T}
}
# wv_fenced RUN: NAME's fence is from a purge that began no earlier than RUN (or RUN's
# start is unknown): RUN may not install NAME. The purge's run id into WV_FENCE.
wv_fenced() {
  wv_word "$WV_ROOT/.fences/$WV_NAME"
  WV_FENCE=$WV_VAL
  [ -n "$WV_FENCE" ] || return 1
  wv_stamp "$WV_FENCE" || return 0
  _fs=$WV_VAL
  wv_stamp "$1" || return 0
  [ "$WV_VAL" -le "$_fs" ]
}

# wv_lease_read: WV_LEASE_UNTIL (0: none).
wv_lease_read() {
  wv_word "$WV_LEASE"
  WV_LEASE_UNTIL=$WV_VAL
  wv_num "$WV_LEASE_UNTIL" || WV_LEASE_UNTIL=0
}
# wv_lease_check: WV_LEASE_UNTIL (0: none) and WV_EXPIRED (1 if it ran out). The host
# clock is read once per command (WV_NOW): a check again under the lock, moments later,
# reuses it.
wv_lease_check() {
  wv_lease_read
  WV_EXPIRED=0
  [ "$WV_LEASE_UNTIL" -gt 0 ] || return 0
  [ -n "$WV_NOW" ] || WV_NOW=$(date +%s)
  [ "$WV_NOW" -le "$WV_LEASE_UNTIL" ] || WV_EXPIRED=1
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
# wv_tmpdir DIR: a new private directory in DIR (mktemp -d: a name nobody could know,
# made exclusively, mode 0700) into WV_TMPD; `.wavectl-NAME.XXXXXXXX`, which a removal
# of NAME knows as its own leftover.
wv_tmpdir() {
  WV_TMPD=$(mktemp -d "$1/.wavectl-${WV_NAME:-path}.XXXXXXXX" 2>/dev/null) && [ -n "$WV_TMPD" ]
}
# wv_copy SRC DST: an exact copy of SRC (a symlink: the link) put at DST: written with
# `cp -a --preserve=all` into a private directory made beside DST (never through an
# existing name), renamed over DST (over a symlink DST: the link itself, never into its
# target), verified.
wv_copy() {
  wv_tmpdir "${2%/*}" || return 1
  if cp -a --preserve=all "$1" "$WV_TMPD/f" 2>/dev/null && mv -fT "$WV_TMPD/f" "$2" &&
    rmdir "$WV_TMPD" && wv_same "$1" "$2"; then
    return 0
  fi
  rm -rf "$WV_TMPD"
  return 1
}
# wv_rm_tmps PATH: the private directories NAME's installs and restores left beside
# PATH when they were cut short (real directories only, never through a link).
wv_rm_tmps() {
  for _t in "${1%/*}/.wavectl-$WV_NAME."*; do
    wv_realdir "$_t" || continue
    if rm -rf "$_t"; then wv_out removed "$_t"; else wv_problem "cannot remove $_t"; fi
  done
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

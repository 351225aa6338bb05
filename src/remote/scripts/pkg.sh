# --- what an install or purge --path checks of a path before it changes anything:
# package ownership, where the path really leads, who may write its directories ---
# wv_pkg_owner PATH: true if an installed package owns PATH (dpkg; rpm where dpkg is
# absent); the package names into WV_PKG. Also asked: PATH with its directory resolved
# (`cd -P`; the link itself is never followed) and, for the /usr merge, that path with
# /usr added or taken away. dpkg-query -S takes a glob: its metacharacters are escaped,
# and only a line naming exactly the path counts (never a diversion line).
wv_pkg_owner() {
  WV_PKG=
  _pd=${1%/*}
  _pr=$(cd -P -- "${_pd:-/}" 2>/dev/null && pwd) || _pr=
  set -- "$1"
  if [ -n "$_pr" ]; then
    _pr=${_pr%/}/${1##*/}
    [ "$_pr" = "$1" ] || set -- "$@" "$_pr"
  else
    _pr=$1
  fi
  case $_pr in
    /usr/bin/* | /usr/sbin/* | /usr/lib/* | /usr/lib32/* | /usr/lib64/* | /usr/libx32/*) set -- "$@" "${_pr#/usr}" ;;
    /bin/* | /sbin/* | /lib/* | /lib32/* | /lib64/* | /libx32/*) set -- "$@" "/usr$_pr" ;;
  esac
  if command -v dpkg-query >/dev/null 2>&1; then
    for _c in "$@"; do
      _o=$(dpkg-query -S "$(printf '%s' "$_c" | sed 's/[][*?\\]/\\&/g')" 2>/dev/null) || continue
      WV_PKG=$(printf '%s\n' "$_o" | WVC=$_c awk 'BEGIN { c = ": " ENVIRON["WVC"]; n = length(c) } substr($0, 1, 13) != "diversion by " && length($0) > n && substr($0, length($0) - n + 1) == c { print substr($0, 1, length($0) - n); exit }')
      [ -n "$WV_PKG" ] && return 0
    done
  elif command -v rpm >/dev/null 2>&1; then
    for _c in "$@"; do
      _o=$(rpm -qf -- "$_c" 2>/dev/null) && [ -n "$_o" ] || continue
      WV_PKG=$(printf '%s' "$_o" | tr '\n' ' ')
      return 0
    done
  fi
  return 1
}

# wv_phys PATH: PATH with its existing directories resolved (`cd -P`, in this shell: no
# fork; the last component is never followed) into WV_PHYS, and the physical path of
# every existing directory above it and of every link on the way (each leads through
# directories a user could change) into WV_DIRS, one per line. Changes the working
# directory (every path here is absolute).
wv_phys() {
  WV_DIRS=
  WV_PHYS=
  _pp=${1%/*}
  _pt=/${1##*/}
  while [ -n "$_pp" ] && ! [ -d "$_pp" ]; do _pt=/${_pp##*/}$_pt _pp=${_pp%/*}; done
  cd -P -- "${_pp:-/}" 2>/dev/null || return 1
  WV_PHYS=${PWD%/}$_pt
  # Each existing directory of the logical path, resolved: its physical path and every
  # directory above that.
  _pl=${_pp:-/}
  while :; do
    if cd -P -- "$_pl" 2>/dev/null; then
      _pd=$PWD
      while :; do
        case $WV_NL$WV_DIRS in *"$WV_NL$_pd$WV_NL"*) ;; *) WV_DIRS=$WV_DIRS$_pd$WV_NL ;; esac
        [ "$_pd" != / ] || break
        _pd=${_pd%/*}
        _pd=${_pd:-/}
      done
    fi
    [ "$_pl" != / ] || break
    _pl=${_pl%/*}
    _pl=${_pl:-/}
  done
  cd /
}
# wv_parents_ok PATH: every existing directory above PATH (wv_phys) is owned by root and
# writable by nobody else; otherwise the first that is not into WV_BAD.
wv_parents_ok() {
  WV_BAD=
  wv_phys "$1" || { WV_BAD=${1%/*}; return 1; }
  _ifs=$IFS
  IFS=$WV_NL
  set -f
  # One path per line, none a pattern (set -f).
  # shellcheck disable=SC2086
  WV_BAD=$(find $WV_DIRS -maxdepth 0 \( ! -user 0 -o -perm /022 \) -print -quit 2>/dev/null)
  set +f
  IFS=$_ifs
  [ -z "$WV_BAD" ]
}
# wv_merged PATH: /bin/x, /sbin/x, /lib/x, /lib64/x as /usr/bin/x...: one name per file
# on a merged-/usr system (into WV_VAL).
wv_merged() {
  case $1 in /bin/* | /sbin/* | /lib/* | /lib64/*) WV_VAL=/usr$1 ;; *) WV_VAL=$1 ;; esac
}
# wv_protected PATH LIST: PATH (absolute, resolved) is one wavectl protects. LIST is the
# controller's (src/spec/protected.rs), one kind per line: `d` the tool directories, `t`
# the tools, `f` single files, `r` trees (nothing inside them).
wv_protected() {
  wv_merged "$1"
  _pm=$WV_VAL
  _pdir=${1%/*}
  _pname=${1##*/}
  _pin=
  _ptool=
  set -f
  while read -r _pk _pr; do
    for _pw in $_pr; do
      case $_pk in
        d) [ "$_pw" != "$_pdir" ] || _pin=1 ;;
        t) [ "$_pw" != "$_pname" ] || _ptool=1 ;;
        f) wv_merged "$_pw"; [ "$WV_VAL" != "$_pm" ] || { set +f; return 0; } ;;
        r) wv_merged "$_pw"; case $_pm in "$WV_VAL" | "$WV_VAL"/*) set +f; return 0 ;; esac ;;
      esac
    done
  done <<EOF
$2
EOF
  set +f
  [ -n "$_pin" ] && [ -n "$_ptool" ]
}
# wv_leads_to_protected PATH LIST: PATH is a symlink to, or lies in a directory that
# resolves to, a protected path (into WV_VAL), though PATH itself is not one (the
# controller checked PATH as written).
wv_leads_to_protected() {
  _lt=
  [ ! -L "$1" ] || _lt=$(readlink -f -- "$1" 2>/dev/null)
  if [ -n "$_lt" ] && wv_protected "$_lt" "$2"; then
    WV_VAL=$_lt
    return 0
  fi
  wv_phys "$1" || return 1
  [ "$WV_PHYS" != "$1" ] && wv_protected "$WV_PHYS" "$2" && WV_VAL=$WV_PHYS
}

# --- package ownership (install and purge --path) ---
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

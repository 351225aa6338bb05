# --- preview (`plan --probe`): $1 NAME, $2 INSTALL_PATH, $3 SHA256 (the spec's script),
# $4 RUN_ID (the run an apply now would be: for the purge fence), $5 FORCE (1:
# --force), $6 PROTECTED (the controller's list, see wv_protected). What the host holds
# at INSTALL_PATH and whether an install would be refused, by the install's own checks
# (checks.sh). Reads only: no lock taken, nothing created or changed (no state
# directory, no lock file), so a running install is never held up.
# Lines (free-form values hex): `path absent|file|link|other`; `sha256 <hex digest>` (a
# file); `link <hex target>`; `owner <hex user:group>`, `mode <octal>`; `package <hex
# names>` (dpkg or rpm, asked only where the file is not NAME's); `manifest <hex>`
# (whichever release's form) or `manifest none`; `txn <run>`; `refused <hex reason>` (the
# install's first refusal); then `wavectl-preview done`.
wv_init "$1"
IP=$2 SPEC_SHA=$3 RUN=$4 FORCE=$5 PROT=$6
case $IP in /*) ;; *) wv_die "install path must be absolute" 65 ;; esac
case $IP in */ | */. | */..) wv_die "install path must name a file" 65 ;; esac
case $SPEC_SHA in '' | *[!0123456789abcdef]*) wv_die "invalid sha256" 65 ;; esac
wv_run_ok "$RUN" || wv_die "invalid run id" 65
case $FORCE in 0 | 1) ;; *) wv_die "invalid force flag" 65 ;; esac
if wv_checks pkg; then _why=; else _why=$WV_WHY; fi
# What is at the path itself (never followed through a link).
if [ -L "$IP" ]; then
  printf 'path link\n'
  wv_out link "$(readlink -- "$IP" 2>/dev/null)"
elif [ -f "$IP" ]; then
  printf 'path file\n'
  _h=$(wv_sha "$IP") && printf 'sha256 %s\n' "$_h"
elif wv_exists "$IP"; then
  printf 'path other\n'
else
  printf 'path absent\n'
fi
if wv_exists "$IP"; then
  # shellcheck disable=SC2046
  set -- $(stat -c '%U:%G %a' -- "$IP" 2>/dev/null)
  if [ "$#" = 2 ]; then
    wv_out owner "$1"
    printf 'mode %s\n' "$2"
  fi
  # The package manager, unless the checks asked it already, or the file is NAME's.
  if [ -z "$WV_PKGQ" ] && [ -z "${OURS-}" ] && wv_pkg_owner "$IP"; then WV_PKGQ=1; fi
  [ -z "$WV_PKGQ" ] || [ -z "$WV_PKG" ] || wv_out package "$WV_PKG"
fi
wv_facts
if [ -n "$WV_MFF" ]; then
  wv_hexj "$(od -An -v -tx1 < "$WV_MFF")"
  printf 'manifest %s\n' "$WV_HEX"
else
  printf 'manifest none\n'
fi
[ -z "$WV_TX" ] || printf 'txn %s\n' "$WV_TX"
[ -z "$_why" ] || wv_out refused "$_why"
printf 'wavectl-preview done\n'

# --- the install's refusals, run by the install and by `plan --probe` (its preview);
# needs pkg.sh. IP (install_path), RUN (the installing run), FORCE (1: --force) and
# PROT (the controller's protected paths) are set by the caller. Reads only: no lock, no
# file written (the install runs them again under its locks).
# wv_checks [pkg]: 0 if an install may go on; else 1 with the first refusal (what and how
# to fix it) in WV_WHY. pkg: also what only root can change (the directories above
# install_path, where it leads, the package manager: slow). Sets OURS (1: NAME's state
# records IP) and WV_PKGQ (1: the package manager was asked, its answer in WV_PKG).
wv_checks() {
  WV_WHY=
  WV_PKGQ=
  if [ -d "$IP" ] && [ ! -L "$IP" ]; then
    WV_WHY="$IP is a directory: install_path must name a file (a symlink there is replaced, not followed)"
    return 1
  fi
  if wv_exists "$IP" && [ ! -f "$IP" ] && [ ! -L "$IP" ]; then
    WV_WHY="$IP is not a regular file: choose another install_path"
    return 1
  fi
  if [ "${1-}" = pkg ] && [ "$FORCE" != 1 ]; then
    wv_parents_ok "$IP" || {
      WV_WHY="$WV_BAD (above install_path $IP) is not owned by root or is writable by group or others: another user could change what root writes there; fix its owner and mode, choose another install_path, or pass --force"
      return 1
    }
    if wv_leads_to_protected "$IP" "$PROT"; then
      WV_WHY="install_path $IP leads to $WV_VAL, a path wavectl protects (what the host needs to stay reachable, bootable and cleanable): choose another install_path, or pass --force"
      return 1
    fi
  fi
  if wv_fenced "$RUN"; then
    WV_WHY="$WV_NAME was purged here by run $WV_FENCE, which began after run $RUN: this run may not install it again (start a new run)"
    return 1
  fi
  for _od in "$WV_ROOT"/*/; do
    _o=${_od%/}
    _o=${_o##*/}
    [ "$_o" != "$WV_NAME" ] && [ -f "${_od}install_path" ] || continue
    wv_read_file "${_od}install_path"
    [ "$WV_VAL" != "$IP" ] || {
      WV_WHY="install_path $IP is owned by rollout $_o here: purge $_o first, or choose another install_path"
      return 1
    }
  done
  wv_facts
  case $WV_TX in
    '' | "$RUN") ;;
    *)
      WV_WHY="run $WV_TX's install was cut short here: resume or roll back run $WV_TX (or purge $WV_NAME) first"
      return 1
      ;;
  esac
  if [ -n "$WV_MFF" ]; then
    case $WV_ST in
      probation)
        [ "$WV_OWNER" = "$RUN" ] || {
          WV_WHY="run $WV_OWNER's install is unconfirmed (probation) here: resume, roll back or purge it first"
          return 1
        }
        ;;
      revoked)
        WV_WHY="run $WV_OWNER's removal is unfinished here (revoked): reconcile first, or purge $WV_NAME"
        return 1
        ;;
      confirmed) ;;
      *)
        WV_WHY="$WV_MFF is unreadable: purge $WV_NAME first"
        return 1
        ;;
    esac
  fi
  OURS=
  if [ -f "$WV_DIR/install_path" ]; then
    wv_read_file "$WV_DIR/install_path"
    if [ "$WV_VAL" = "$IP" ]; then
      OURS=1
    elif [ -n "$WV_MFF" ]; then
      WV_WHY="$WV_NAME is installed at $WV_VAL here: purge $WV_NAME first, or keep install_path"
      return 1
    fi
  fi
  if [ "${1-}" = pkg ] && [ -z "$OURS" ] && [ "$FORCE" != 1 ] && wv_exists "$IP"; then
    WV_PKGQ=1
    if wv_pkg_owner "$IP"; then
      WV_WHY="$IP belongs to package $WV_PKG: pass --force to replace it (it is kept and restored on removal)"
      return 1
    fi
  fi
  return 0
}

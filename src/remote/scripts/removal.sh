# --- removal and the guard (remove, and the wrapper's guard); needs procs.sh and
# activation.sh ---
# wv_rm_ours PATH: delete PATH only if it is a version wavectl installed under NAME (its
# sha256 is in sha256s); a file someone changed since is kept and noted.
wv_rm_ours() {
  wv_exists "$1" || return 0
  _h=
  [ -f "$1" ] && [ ! -L "$1" ] && _h=$(wv_sha "$1")
  if [ -n "$_h" ] && wv_has_line "$WV_DIR/sha256s" "$_h"; then
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
  wv_act_found
  # (No manifest at all is nothing to mark.)
  wv_set_state revoked || [ -z "$WV_MFF" ] || wv_problem "cannot mark the manifest revoked"
  wv_act_drop
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
  [ -z "$_ip" ] || wv_rm_tmps "$_ip"
  [ -n "$_ours" ] && [ -n "$_ip" ] && ! wv_exists "$_ip" && wv_rm_created_dirs "$_ip"
  # Verify what must be gone.
  wv_act_left
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
  wv_mf_read "$_P"
  _pr=$WV_MFR
  _psha=$WV_MFH
  # prev's manifest, in its own form (the wrapper kept with it reads that one).
  _pm=${WV_MFF##*/}
  wv_out found "$WV_DIR"
  wv_act_found
  # Revoked first (the wrapper refuses), whoever's manifest it is: prev's comes back last.
  wv_set_state revoked || [ -z "$WV_MFF" ] || wv_problem "cannot mark the manifest revoked"
  wv_act_drop
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
    [ "$_h" = "$_psha" ] ||
      wv_out note "restored $2 as it stood before run $1; its sha256 $_h is not the $_psha run $_pr installed (changed on the host since?)"
  else
    wv_problem "cannot restore run $_pr's script to $2 exactly"
  fi
  [ -z "$2" ] || wv_rm_tmps "$2"
  for _f in run runs.log; do
    if [ -f "$_P/$_f" ]; then
      wv_copy "$_P/$_f" "$WV_DIR/$_f" || wv_problem "cannot restore run $_pr's $_f"
    elif ! rm -f "$WV_DIR/$_f"; then
      wv_problem "cannot remove $WV_DIR/$_f"
    fi
  done
  wv_act_restore "$_P" "$_pr"
  # Its manifest (confirmed) last, and only over a complete restore; a retry that finds it
  # in place learns from `removed` that this was RUN's undoing.
  if [ "$WV_CLEAN" = 1 ]; then
    wv_removed_note "$1" "$_pr"
    # Then the other name's file goes: prev's manifest is the host's record from then on
    # (an earlier release's `manifest` restored: the newer run's manifest.json; a
    # manifest.json restored: a `manifest` nothing reads any more).
    _po=manifest.json
    [ "$_pm" = manifest ] || _po=manifest
    if [ -n "$_pm" ] && wv_copy "$_P/$_pm" "$WV_DIR/$_pm" && rm -f "$WV_DIR/$_po"; then
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
  [ -z "$1" ] || wv_rm_tmps "$1"
  wv_removed_note "$WV_TX" "$WV_OWNER"
  [ "$WV_ST" = probation ] || rm -f "$WV_LEASE"
  rm -f "$WV_TXN"
  for _f in "$WV_PREV.new" "$WV_TXN"; do wv_exists "$_f" && wv_problem "cannot remove $_f"; done
  wv_out note "the install of run $WV_TX was cut short before it changed run $WV_OWNER's version: nothing to restore"
  printf 'killed 0\nrestored 0\n'
}

# --- the host's history of NAME's versions ---
# wv_removed_note RUN HOLDS: RUN's install was undone here and the host holds run HOLDS's
# version again (-: RUN's version was dropped, nothing came back): one line in
# `removed`, so a retry knows.
wv_removed_note() { printf '%s %s\n' "$1" "${2:--}" >> "$WV_DIR/removed" 2>/dev/null; }
# wv_removed_as RUN: what the host held again once RUN was undone (a run id or -), into
# WV_VAL; fails if RUN was never undone here.
wv_removed_as() {
  WV_VAL=
  _ra=
  { while read -r _ra _rb; do [ "$_ra" != "$1" ] || WV_VAL=$_rb; done < "$WV_DIR/removed"; } 2>/dev/null
  [ -n "$WV_VAL" ]
}
# wv_superseded RUN: RUN's version is not the host's current one: NAME stays here under
# the newer run (WV_OWNER); if RUN's version is the one kept for that run's rollback
# (prev/), it is dropped from the host's history first, so no later rollback brings it
# back. Reports `superseded <hex run id>`.
wv_superseded() {
  if [ "$WV_PREVFOR" = "$WV_OWNER" ]; then
    wv_mf_read "$WV_PREVDIR"
    if [ "$WV_MFR" = "$1" ]; then
      wv_out found "$WV_PREVDIR"
      rm -rf "$WV_PREV" "$WV_PREV.new"
      if wv_exists "$WV_PREV" || wv_exists "$WV_PREV.new"; then
        wv_problem "cannot remove $WV_PREVDIR"
      else
        wv_out removed "$WV_PREVDIR"
        # Nothing came back: a retry finds NAME under the newer run, superseded again.
        wv_removed_note "$1" -
        # The newer run's manifest no longer names a previous version.
        wv_mf_read "$WV_DIR"
        case $WV_MFJ in
          2) wv_mfj_set "$WV_MFF" 'prev_*' null ;;
          1) sed 's/,"prev":{.*}}$/,"prev":null}/' "$WV_MFF" > "$WV_MFF.tmp" && mv -f "$WV_MFF.tmp" "$WV_MFF" ;;
          *) [ -z "$WV_MFF" ] || wv_mf_set "$WV_MFF" 'prev_*' '' ;;
        esac || wv_problem "cannot rewrite $WV_MFF"
      fi
    fi
  fi
  wv_hexv "$WV_OWNER"
  printf 'superseded %s\n' "$WV_HEX"
}
# wv_remove_run RUN INSTALL_PATH WAIT_SECS: undo RUN's install, and only RUN's. The host
# is RUN's if txn names RUN, or (no txn) the manifest does. RUN's install over an
# earlier confirmed version brings that version back whole (prev/); otherwise
# everything goes. Otherwise nothing of the install in place is touched: the host holds
# again what it held before RUN (`other <hex run id> <state>`: RUN was undone here
# before), or NAME stays under a newer run (wv_superseded), or another run's install is
# unfinished (a problem); with no install at all, the activation files RUN wrote go.
wv_remove_run() {
  wv_facts
  _rip=$2
  if [ -z "$_rip" ] && [ -f "$WV_DIR/install_path" ]; then
    wv_read_file "$WV_DIR/install_path"
    _rip=$WV_VAL
  fi
  _own=${WV_TX:-$WV_OWNER}
  if [ "$_own" != "$1" ]; then
    if [ -n "$WV_TX" ]; then
      wv_hexv "$WV_TX"
      printf 'other %s installing\n' "$WV_HEX"
      wv_problem "run $WV_TX's install is unfinished here: resume or roll back run $WV_TX (or purge $WV_NAME) first"
    elif [ -n "$WV_OWNER" ]; then
      if wv_removed_as "$1" && [ "$WV_VAL" = "$WV_OWNER" ]; then
        wv_hexv "$WV_OWNER"
        printf 'other %s %s\n' "$WV_HEX" "${WV_ST:-none}"
      else
        wv_superseded "$1"
      fi
    else
      wv_act_drop_of "$1"
      [ ! -d "$WV_DIR" ] || wv_out note "$WV_DIR holds no run's install: left alone"
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
  # Never without the lock: whoever holds it (an install, a removal) decides; the facts
  # are read again under it. The minutely guard waits a little (a settle reads under the
  # lock, shared, for a moment: a guard that gave up at once could miss minute after
  # minute beside a reader that asks often).
  _gw=10
  [ "$1" != boot ] || _gw=30
  if ! wv_lock "$_gw"; then
    logger -t wavectl "guard: $WV_NAME's state lock is held: run $WV_GR not reverted now" 2>/dev/null
    return 0
  fi
  wv_facts
  wv_guard_pick "$1" || return 0
  _glog=/var/log/wavectl-guard.log
  { mkdir -p /var/log && : >> "$_glog"; } 2>/dev/null || _glog=/dev/null
  _now=$(date +%s)
  printf '%s wavectl guard: %s run %s %s; reverting it\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$WV_GR" "$WV_GWHY" >> "$_glog"
  # Recorded before anything changes (clean 0 until it checks out), so whoever looks
  # while the revert runs, or after it was cut short, learns it was the guard.
  case $WV_GWHY in
    *revoked*) ;;
    *) mkdir -p "$WV_ROOT/.reverted" && wv_put "$WV_REV" "$WV_GR $WV_LEASE_UNTIL $_now 0$WV_NL" ;;
  esac
  # The removal's report, its hex values decoded for the log.
  _gout=$(wv_remove_run "$WV_GR" "" 10 2>&1; printf 'clean %s\n' "$WV_CLEAN")
  case $_gout in *"clean 1") WV_CLEAN=1 ;; *) WV_CLEAN=0 ;; esac
  printf '%s\n' "$_gout" | awk '
    BEGIN { for (i = 0; i < 256; i++) h[sprintf("%02x", i)] = sprintf("%c", i) }
    NF == 2 && $1 ~ /^(found|removed|note|problem|restored-version|other)$/ && $2 ~ /^([0-9a-f][0-9a-f])+$/ {
      s = ""; for (i = 1; i < length($2); i += 2) s = s h[substr($2, i, 2)]
      print "  " $1 ": " s; next
    }
    { print "  " $0 }' >> "$_glog" 2>&1
  printf '%s wavectl guard: %s run %s reverted, clean=%s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$WV_NAME" "$WV_GR" "$WV_CLEAN" >> "$_glog"
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

# --- install: $1 NAME, $2 INSTALL_PATH, $3 MODE (octal), $4 SHA256, $5 KIND, $6 SCHEDULE,
# $7 WRAPPER (file text), $8 MANIFEST (manifest.json, one field a line: probation,
# backup false and prev_* null, which the host sets),
# $9 RUN_ID, ${10} LEASE_SECS (0: no lease), ${11} FORCE (1: replace a packaged file,
# a path that leads to a protected one, or one under directories others may write),
# ${12} START (1: start the first run once installed), ${13} PROTECTED (the controller's
# list, see wv_protected). The script body arrives on stdin.
# Prints `wavectl-install ok backup=0|1 prev=<run|-> started=0|1` last. A refusal
# changes nothing (and leaves no state directory behind): `wavectl-refused <hex
# reason>` and exit 73.
# The shared library is not sent twice: it is the wrapper's ($7) first part, up to the
# marker line `wavectl-lib-end` (constant text; the wrapper's quoted values follow it).
_m='
: wavectl-lib-end'
eval "${7%%"$_m"*}"
umask 077
wv_init "$1"
IP=$2 MODE=$3 SHA=$4 KIND=$5 SCHED=$6 WRAPPER=$7 MAN=$8 RUN=$9 LEASE=${10} FORCE=${11} START=${12}
PROT=${13}
case $IP in /*) ;; *) wv_die "install path must be absolute" 65 ;; esac
case $IP in */ | */. | */..) wv_die "install path must name a file" 65 ;; esac
case $MODE in '' | *[!01234567]*) wv_die "invalid mode" 65 ;; esac
case $SHA in '' | *[!0123456789abcdef]*) wv_die "invalid sha256" 65 ;; esac
[ "${#SHA}" -eq 64 ] || wv_die "invalid sha256" 65
wv_act_check "$KIND" "$SCHED"
wv_run_ok "$RUN" || wv_die "invalid run id" 65
wv_num "$LEASE" || wv_die "invalid lease" 65
case $FORCE in 0 | 1) ;; *) wv_die "invalid force flag" 65 ;; esac
case $START in 0 | 1) ;; *) wv_die "invalid start flag" 65 ;; esac
# The manifest is one field a line, names NAME and RUN in probation, and holds the lines
# the host sets (wv_man_set).
case $MAN in "{$WV_NL"*"$WV_NL}$WV_NL") ;; *) wv_die "invalid manifest" 65 ;; esac
for _l in "\"name\": \"$WV_NAME\"" "\"run_id\": \"$RUN\"" '"state": "probation"' \
  '"backup": false' '"prev_run_id": null' '"prev_sha256": null'; do
  case $MAN in *"$WV_NL$_l,$WV_NL"*) ;; *) wv_die "invalid manifest" 65 ;; esac
done
# wv_man_set LINE NEW: MAN with its line LINE (one of those above, comma and all)
# replaced by NEW.
wv_man_set() { MAN=${MAN%%"$WV_NL$1$WV_NL"*}$WV_NL$2$WV_NL${MAN#*"$WV_NL$1$WV_NL"}; }

# wv_drain: read the script body to its end, unused, before an exit that does not need
# it (the controller can then always finish sending it and read the answer).
wv_drain() { cat > /dev/null 2>&1; }
wv_refuse() {
  wv_drain
  # A state directory this install made for NAME goes again: the host stays untouched.
  [ -z "$NEWDIR" ] || rm -rf "$WV_DIR"
  wv_hexv "$1"
  printf 'wavectl-refused %s\n' "$WV_HEX"
  printf 'wavectl: refused: %s\n' "$1" >&2
  exit 73
}
# wv_done PREV [STARTED]: the success line.
wv_done() {
  _b=0
  wv_exists "$WV_DIR/backup" && _b=1
  printf 'wavectl-install ok backup=%s prev=%s started=%s\n' "$_b" "${1:--}" "${2:-0}"
  exit 0
}
# wv_fail MESSAGE [CODE]: a failure before the new script is in place: what this attempt
# started is undone (nothing of the version in place was changed), then wv_die.
wv_fail() {
  [ -z "$TMPD" ] || rm -rf "$TMPD"
  if [ -z "$TXN_BEFORE" ]; then
    rm -rf "$WV_PREV.new"
    if [ -n "$NEWDIR" ]; then
      wv_rm_created_dirs "$IP" > /dev/null
      rm -rf "$WV_DIR"
    else
      rm -f "$WV_TXN"
      [ "$WV_ST" = probation ] || rm -f "$WV_LEASE"
    fi
  fi
  wv_die "$1" "${2:-1}"
}
# wv_snapshot: the confirmed version in place kept whole in prev/ (built in prev.new/,
# renamed when complete); nothing of it is changed before.
wv_snapshot() {
  _N=$WV_PREV.new
  rm -rf "$_N" && mkdir "$_N" || return 1
  if wv_exists "$IP"; then
    wv_copy "$IP" "$_N/script" || return 1
  else
    : > "$_N/script.none" || return 1
  fi
  # In its own form (an earlier release's `manifest` or compact manifest.json too): the
  # wrapper kept with it reads that one.
  wv_mf_read "$WV_DIR"
  [ -n "$WV_MFF" ] && wv_copy "$WV_MFF" "$_N/${WV_MFF##*/}" || return 1
  for _f in run runs.log; do
    [ ! -f "$WV_DIR/$_f" ] || wv_copy "$WV_DIR/$_f" "$_N/$_f" || return 1
  done
  wv_act_save "$_N" || return 1
  printf '%s\n' "$RUN" > "$_N/for" && : > "$_N/complete" || return 1
  rm -rf "$WV_PREV" && mv "$_N" "$WV_PREV"
}

TMPD=
TXN_BEFORE=x
NEWDIR=
wv_busy() {
  wv_drain
  [ -z "$NEWDIR" ] || rm -rf "$WV_DIR"
  wv_die "$1" 75
}
# Every refusal (checks.sh) first without a lock (the package manager is slow), then
# again under the host lock (who owns install_path is decided across rollouts) and
# NAME's state lock.
wv_checks pkg || wv_refuse "$WV_WHY"
wv_host_lock 20 || wv_busy "the host is busy (another install holds the host-wide wavectl lock)"
if wv_realdir "$WV_DIR"; then
  wv_lock 20 || wv_busy "$WV_NAME is busy here (an install, removal or guard holds $WV_DIR/state.lock)"
  wv_checks || wv_refuse "$WV_WHY"
else
  wv_checks || wv_refuse "$WV_WHY"
  NEWDIR=1
  { wv_realdir "$WV_ROOT" || mkdir -m 0700 "$WV_ROOT"; } && mkdir -m 0700 "$WV_DIR" || wv_die "cannot create $WV_DIR"
  wv_lock 20 || wv_busy "$WV_NAME is busy here ($WV_DIR/state.lock is held)"
  # A purge that came meanwhile left its fence before it looked for this directory.
  ! wv_fenced "$RUN" ||
    wv_refuse "$WV_NAME was purged here by run $WV_FENCE, which began after run $RUN: this run may not install it again (start a new run)"
fi
chmod 0700 "$WV_ROOT" "$WV_DIR" || wv_die "cannot set the mode of $WV_DIR"
# The same run again (a controller that lost the outcome): already confirmed, done.
if [ "$WV_ST" = confirmed ] && [ "$WV_OWNER" = "$RUN" ] && [ -z "$WV_TX" ]; then
  wv_drain
  [ "$WV_MFH" = "$SHA" ] || wv_die "run $RUN is installed here with another script" 65
  _p=
  [ "$WV_PREVFOR" != "$RUN" ] || { wv_mf_read "$WV_PREVDIR"; _p=$WV_MFR; }
  wv_done "$_p"
fi

# 1. The transaction, first.
TXN_BEFORE=$WV_TX
[ "$WV_TX" = "$RUN" ] || wv_put "$WV_TXN" "$RUN$WV_NL" || wv_fail "cannot write $WV_TXN"
# (Not rewritten when it already holds IP: wv_checks read it.)
{ [ -n "$OURS" ] && [ ! -L "$WV_DIR/install_path" ]; } || wv_put "$WV_DIR/install_path" "$IP" ||
  wv_fail "cannot write $WV_DIR/install_path"
# install_path is claimed: other rollouts' installs see it from now on.
wv_host_unlock
wv_has_line "$WV_DIR/sha256s" "$SHA" || printf '%s\n' "$SHA" >> "$WV_DIR/sha256s" ||
  wv_fail "cannot write $WV_DIR/sha256s"
if [ "$LEASE" -gt 0 ]; then
  wv_put "$WV_LEASE" "$(($(date +%s) + LEASE))$WV_NL" || wv_fail "cannot write $WV_LEASE"
else
  rm -f "$WV_LEASE"
fi

# 2. First install of NAME: the pre-wavectl original (or its absence) and the
# directories this install creates, decided once.
if [ ! -f "$WV_MANIFEST" ] && [ ! -f "$WV_DIR/manifest" ] && ! wv_exists "$WV_DIR/backup" &&
  [ ! -e "$WV_DIR/backup.none" ]; then
  _d=${IP%/*}
  _top=
  while [ -n "$_d" ] && ! wv_exists "$_d"; do _top=$_d _d=${_d%/*}; done
  ! wv_exists "$WV_DIR/created_dirs" || rm -f "$WV_DIR/created_dirs"
  [ -z "$_top" ] || wv_put "$WV_DIR/created_dirs" "$_top" || wv_fail "cannot write $WV_DIR/created_dirs"
  if wv_exists "$IP"; then
    wv_copy "$IP" "$WV_DIR/backup" || wv_fail "cannot back up the file at the install path exactly; nothing installed"
  else
    : > "$WV_DIR/backup.none" || wv_fail "cannot write $WV_DIR/backup.none"
  fi
fi

# 3. The script beside its place, in a private directory made for it, checked.
PARENT=${IP%/*}
[ -d "${PARENT:-/}" ] || (umask 022 && mkdir -p "${PARENT:-/}") || wv_fail "cannot create the directory of the install path"
wv_tmpdir "$PARENT" || wv_fail "cannot create a private directory beside the install path"
TMPD=$WV_TMPD
TMP=$TMPD/script
cat > "$TMP" || wv_fail "cannot write the script to a temporary file"
GOT=$(wv_sha "$TMP")
[ "$GOT" = "$SHA" ] || wv_fail "sha256 mismatch: expected $SHA, got ${GOT:-nothing}; nothing installed" 66
chmod "$MODE" "$TMP" || wv_fail "cannot set the script's mode"

# 4. An upgrade keeps the confirmed version in place whole, then starts an empty run log.
if [ "$WV_ST" = confirmed ] && [ "$WV_OWNER" != "$RUN" ]; then
  if [ "$WV_PREVFOR" != "$RUN" ]; then
    wv_snapshot || wv_fail "cannot keep run $WV_OWNER's version in $WV_PREV; nothing changed"
  elif [ "$WV_PREVDIR" != "$WV_PREV" ]; then
    rm -rf "$WV_PREV" && mv "$WV_PREVDIR" "$WV_PREV" || wv_fail "cannot rename $WV_PREVDIR"
  fi
  wv_put "$WV_DIR/runs.log" "" || wv_fail "cannot start a new $WV_DIR/runs.log"
fi

# 5. In place; from here on a failure leaves txn for a removal or a resumed install.
mv -fT "$TMP" "$IP" || wv_fail "cannot put the script in place"
rmdir "$TMPD"
TMPD=
TXN_BEFORE=$RUN
{ printf '%s' "$WRAPPER" > "$WV_RUN.tmp" && chmod 0755 "$WV_RUN.tmp" && mv -f "$WV_RUN.tmp" "$WV_RUN"; } ||
  wv_die "cannot write the wrapper $WV_RUN"
# The boot id (one line) copied by the shell.
_b=
if { IFS= read -r _b < /proc/sys/kernel/random/boot_id; } 2>/dev/null; then
  printf '%s\n' "$_b" > "$WV_DIR/boot_id" 2>/dev/null || rm -f "$WV_DIR/boot_id"
else
  rm -f "$WV_DIR/boot_id"
fi
# The manifest (MAN, checked above) with what only the host knows: whether a backup of
# the pre-wavectl original is kept, and the version kept for this run's rollback.
PREVRUN=
! wv_exists "$WV_DIR/backup" || wv_man_set '"backup": false,' '"backup": true,'
wv_facts
if [ "$WV_PREVFOR" = "$RUN" ]; then
  wv_mf_read "$WV_PREV"
  _ps=$WV_MFH
  case $_ps in *[!0123456789abcdef]*) _ps= ;; esac
  if wv_run_ok "$WV_MFR"; then
    PREVRUN=$WV_MFR
    wv_man_set '"prev_run_id": null,' "\"prev_run_id\": \"$PREVRUN\","
    wv_man_set '"prev_sha256": null,' "\"prev_sha256\": \"$_ps\","
  fi
fi
wv_put "$WV_MANIFEST" "$MAN" || wv_die "cannot write the manifest"
# An earlier release's `manifest`, if this replaced such a version, is kept in prev/.
[ ! -e "$WV_DIR/manifest" ] || rm -f "$WV_DIR/manifest" || wv_die "cannot remove $WV_DIR/manifest"

# 6. Activation last: nothing runs the script before everything above is in place.
wv_act_install "$KIND" "$SCHED" "$RUN"
rm -f "$WV_TXN" || wv_die "cannot remove $WV_TXN"
# 7. The first run (START): as `start_run` does, detached in its own session, without
# this command's lock (fd 8) or its stdin (the script body, read to its end above).
if [ "$START" = 1 ]; then
  setsid "$WV_RUN" < /dev/null > /dev/null 2>&1 8>&- &
  wv_done "$PREVRUN" 1
fi
wv_done "$PREVRUN"

# --- activation: the on-host side of each `[activation] kind`, for install, removal and
# the guard (needs lib.sh). A kind writes the files of one set; a set is the files one
# scheduler reads, each with its paths, removal, copy into prev/ and restore:
#   cron   /etc/cron.d/wavectl-NAME
#   units  /etc/systemd/system/wavectl-NAME{.service,.timer,-guard.service,-lease.*}
# Every file's first line names the run that wrote it. A new kind is its case in
# wv_act_check and wv_act_install; new files are a new set: its name in WV_ACT_SETS and
# its wv_<set>_paths, _drop, _save and _restore (and a writer for wv_act_install).
WV_ACT_SETS="cron units"

# wv_act_check KIND SCHEDULE: the install's arguments, checked again (exit 65).
wv_act_check() {
  case $1 in
    cron | systemd-timer)
      case $2 in '' | *[[:cntrl:]]*) wv_die "invalid schedule" 65 ;; esac
      [ "$1" = systemd-timer ] || case $2 in *%*) wv_die "invalid schedule: % in a cron line" 65 ;; esac
      ;;
    none) ;;
    *) wv_die "invalid activation kind" 65 ;;
  esac
}

# wv_act_install KIND SCHEDULE RUN: the kind's files for RUN, the other sets' dropped
# (quietly). Called last by the install: nothing runs the script before the rest is in
# place.
wv_act_install() {
  wv_act_paths
  case $1 in
    cron)
      wv_units_drop > /dev/null
      wv_cron_write "$2" "$3" || wv_die "cannot write $WV_CRON"
      ;;
    systemd-timer)
      wv_cron_drop > /dev/null
      wv_units_write "$2" "$3" || wv_die "cannot write the systemd units"
      wv_units_enable || wv_die "cannot enable $WV_UNIT.timer"
      ;;
    none)
      # No schedule: the lease and boot guards only (cron where /etc/cron.d exists, else
      # systemd units; with neither there is no on-host guard).
      wv_units_drop > /dev/null
      wv_cron_drop > /dev/null
      if [ -d /etc/cron.d ]; then
        wv_cron_write "" "$3" || wv_die "cannot write $WV_CRON"
      elif wv_systemd; then
        wv_units_write "" "$3" && wv_units_enable || wv_die "cannot write the guard's systemd units"
      else
        printf 'wavectl: neither /etc/cron.d nor systemd here: no on-host lease guard\n' >&2
      fi
      ;;
  esac
}

# --- over every set ---
# wv_act_paths: every set's paths; WV_ACT_FILES: all their files.
wv_act_paths() {
  WV_ACT_FILES=
  for _as in $WV_ACT_SETS; do
    "wv_${_as}_paths"
    WV_ACT_FILES="$WV_ACT_FILES $WV_SET_FILES"
  done
}
# wv_act_found: `found FILE` for each activation file of NAME.
wv_act_found() {
  wv_act_paths
  for _af in $WV_ACT_FILES; do wv_exists "$_af" && wv_out found "$_af"; done
}
# wv_act_left: a problem for each activation file of NAME still there.
wv_act_left() {
  wv_act_paths
  for _af in $WV_ACT_FILES; do wv_exists "$_af" && wv_problem "$_af is still there"; done
}
# wv_act_drop: every activation file of NAME removed (what runs them stopped first).
wv_act_drop() {
  wv_act_paths
  for _as in $WV_ACT_SETS; do "wv_${_as}_drop"; done
}
# wv_act_save DIR: NAME's activation files copied into DIR (an upgrade's prev/).
wv_act_save() {
  wv_act_paths
  for _as in $WV_ACT_SETS; do "wv_${_as}_save" "$1" || return 1; done
}
# wv_act_restore DIR RUN: the activation files DIR holds (RUN's) back in place, enabled.
wv_act_restore() {
  wv_act_paths
  for _as in $WV_ACT_SETS; do "wv_${_as}_restore" "$1" "$2"; done
}
# wv_act_run FILE: the run whose install wrote the activation file FILE (its first line
# names it), into WV_VAL; empty if none.
wv_act_run() {
  wv_word "$1"
  case $WV_VAL in
    "# wavectl $WV_NAME run "*)
      WV_VAL=${WV_VAL#"# wavectl $WV_NAME run "}
      WV_VAL=${WV_VAL%%:*}
      ;;
    *) WV_VAL= ;;
  esac
}
# wv_act_drop_of RUN: NAME's activation sets with a file RUN's install wrote go (a
# removal of RUN where no install of any run is left: its state directory went under it).
wv_act_drop_of() {
  for _as in $WV_ACT_SETS; do
    "wv_${_as}_paths"
    _ah=
    for _af in $WV_SET_FILES; do
      [ -f "$_af" ] && [ ! -L "$_af" ] || continue
      wv_act_run "$_af"
      [ "$WV_VAL" != "$1" ] || { _ah=1; wv_out found "$_af"; }
    done
    [ -z "$_ah" ] || "wv_${_as}_drop"
  done
}

# --- cron: /etc/cron.d/wavectl-NAME ---
wv_cron_paths() {
  WV_CRON=/etc/cron.d/wavectl-$WV_NAME
  WV_SET_FILES=$WV_CRON
}
# cron rereads /etc/cron.d when the directory's mtime, in whole seconds, differs from
# the one it saw at its last look (once a minute). Seen here (Debian's cron 3.0pl1): cron
# started, the boot guard's revert and a new install's cron file all in one second, and
# the new file never ran (its lease guard did not revert it in 150 s). So every change
# here is bracketed: wv_cron_before notes the mtime; wv_cron_after [FILE], if the change
# left it the same, waits for the next second and touches the directory (at most ~1 s,
# and only then: a rollback's removal and restore, two installs in one second), and FILE,
# a file just written (cron also skips a file whose own mtime it has seen; a restored
# file keeps its version's mtime: it is that version whole).
wv_cron_before() { WV_CRON_M0=$(stat -c %Y /etc/cron.d 2>/dev/null) || WV_CRON_M0=; }
wv_cron_after() {
  _cm=$(stat -c %Y /etc/cron.d 2>/dev/null) || return 0
  [ "$_cm" = "${WV_CRON_M0:-}" ] || return 0
  # (The file system's clock may be a tick behind `date`: the mtime itself is checked.)
  _ci=0
  while [ "$_ci" -lt 40 ]; do
    sleep 0.05 2>/dev/null || sleep 1
    _ci=$((_ci + 1))
    [ "$(date +%s)" -gt "$_cm" ] || continue
    if [ -n "${1:-}" ] && [ -f "$1" ] && [ ! -L "$1" ]; then touch "$1" 2>/dev/null || :; fi
    touch /etc/cron.d 2>/dev/null || return 0
    [ "$(stat -c %Y /etc/cron.d 2>/dev/null)" = "$_cm" ] || return 0
  done
}
# wv_cron_write SCHEDULE RUN: the schedule line (none if SCHEDULE is empty), the lease
# guard every minute and the boot guard.
wv_cron_write() {
  _ct=/etc/cron.d/.wavectl-$WV_NAME.tmp
  [ -d /etc/cron.d ] || (umask 022 && mkdir -p /etc/cron.d) || return 1
  wv_cron_before
  {
    printf '# wavectl %s run %s: written by wavectl, removed by its rollback or purge; do not edit\n' "$WV_NAME" "$2" &&
      printf 'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' &&
      { [ -z "$1" ] || printf '%s root %s\n' "$1" "$WV_RUN"; } &&
      printf '* * * * * root %s guard\n@reboot root %s guard boot\n' "$WV_RUN" "$WV_RUN"
  } > "$_ct" && chmod 0644 "$_ct" && mv -f "$_ct" "$WV_CRON" || { rm -f "$_ct"; return 1; }
  wv_cron_after "$WV_CRON"
}
wv_cron_drop() {
  ! wv_exists "/etc/cron.d/.wavectl-$WV_NAME.tmp" || rm -f "/etc/cron.d/.wavectl-$WV_NAME.tmp"
  wv_exists "$WV_CRON" || return 0
  wv_cron_before
  if rm -f "$WV_CRON"; then wv_out removed "$WV_CRON"; else wv_problem "cannot remove $WV_CRON"; fi
  wv_cron_after
}
wv_cron_save() {
  [ ! -f "$WV_CRON" ] || wv_copy "$WV_CRON" "$1/cron"
}
wv_cron_restore() {
  if [ -f "$1/cron" ]; then
    wv_cron_before
    (umask 022 && mkdir -p /etc/cron.d) && wv_copy "$1/cron" "$WV_CRON" || wv_problem "cannot restore $WV_CRON"
    wv_cron_after
  fi
}

# --- units: /etc/systemd/system/wavectl-NAME* ---
wv_units_paths() {
  WV_UNIT=wavectl-$WV_NAME
  WV_UNITS="$WV_UNIT.timer $WV_UNIT.service $WV_UNIT-guard.service $WV_UNIT-lease.timer $WV_UNIT-lease.service"
  WV_SET_FILES=
  for _au in $WV_UNITS; do WV_SET_FILES="$WV_SET_FILES $WV_UNITDIR/$_au"; done
}
# wv_units_write SCHEDULE RUN: the boot guard service, the lease guard service and its
# minutely timer, and (SCHEDULE not empty) the script's service and timer.
wv_units_write() {
  [ -d "$WV_UNITDIR" ] || (umask 022 && mkdir -p "$WV_UNITDIR") || return 1
  _U=$WV_UNITDIR/$WV_UNIT
  _ul=
  _uh="# wavectl $WV_NAME run $2${WV_NL}[Unit]$WV_NL"
  if [ -n "$1" ]; then
    printf '%sDescription=wavectl: %s\n\n[Service]\nType=oneshot\nExecStart=%s\n' "$_uh" "$WV_NAME" "$WV_RUN" > "$_U.service.tmp" &&
      printf '%sDescription=wavectl timer: %s\n\n[Timer]\nOnCalendar=%s\n\n[Install]\nWantedBy=timers.target\n' "$_uh" "$WV_NAME" "$1" > "$_U.timer.tmp" || return 1
    _ul=". .timer"
  fi
  printf '%sDescription=wavectl boot guard: %s\nBefore=%s.timer\n\n[Service]\nType=oneshot\nExecStart=%s guard boot\n\n[Install]\nWantedBy=multi-user.target\n' "$_uh" "$WV_NAME" "$WV_UNIT" "$WV_RUN" > "$_U-guard.service.tmp" &&
    printf '%sDescription=wavectl lease guard: %s\n\n[Service]\nType=oneshot\nExecStart=%s guard\n' "$_uh" "$WV_NAME" "$WV_RUN" > "$_U-lease.service.tmp" &&
    printf '%sDescription=wavectl lease guard timer: %s\n\n[Timer]\nOnCalendar=minutely\nAccuracySec=5s\n\n[Install]\nWantedBy=timers.target\n' "$_uh" "$WV_NAME" > "$_U-lease.timer.tmp" || return 1
  # Timers last: nothing starts a service before it is in place.
  for _s in -guard.service -lease.service -lease.timer $_ul; do
    [ "$_s" = . ] && _s=.service
    chmod 0644 "$_U$_s.tmp" && mv -f "$_U$_s.tmp" "$_U$_s" || { rm -f "$_U$_s.tmp"; return 1; }
  done
}
# wv_units_drop: stop, disable and delete all five units of NAME.
wv_units_drop() {
  _any=
  for _u in $WV_UNITS; do wv_exists "$WV_UNITDIR/$_u" && _any=1; done
  [ -n "$_any" ] || return 0
  if wv_systemd; then
    # --no-block, and never the guard's own services: a guard runs inside one of them.
    systemctl --no-block stop "$WV_UNIT.timer" "$WV_UNIT-lease.timer" "$WV_UNIT.service" >/dev/null 2>&1
    systemctl disable "$WV_UNIT.timer" "$WV_UNIT-lease.timer" "$WV_UNIT-guard.service" >/dev/null 2>&1
  fi
  for _u in $WV_UNITS; do
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
# wv_units_enable: when systemd runs, reload it and enable what NAME's unit files hold.
wv_units_enable() {
  wv_systemd || return 0
  systemctl daemon-reload >/dev/null 2>&1 || return 1
  if [ -f "$WV_UNITDIR/$WV_UNIT-guard.service" ]; then
    systemctl enable "$WV_UNIT-guard.service" >/dev/null 2>&1 || return 1
  fi
  for _t in "$WV_UNIT.timer" "$WV_UNIT-lease.timer"; do
    [ -f "$WV_UNITDIR/$_t" ] || continue
    systemctl enable --now "$_t" >/dev/null 2>&1 || return 1
  done
}
wv_units_save() {
  for _u in $WV_UNITS; do
    [ -f "$WV_UNITDIR/$_u" ] || continue
    mkdir -p "$1/units" && wv_copy "$WV_UNITDIR/$_u" "$1/units/$_u" || return 1
  done
}
# wv_units_restore DIR RUN: DIR's units back, enabled when systemd runs.
wv_units_restore() {
  _pu=
  for _u in $WV_UNITS; do
    [ -f "$1/units/$_u" ] || continue
    _pu=1
    (umask 022 && mkdir -p "$WV_UNITDIR") && wv_copy "$1/units/$_u" "$WV_UNITDIR/$_u" ||
      wv_problem "cannot restore $WV_UNITDIR/$_u"
  done
  [ -z "$_pu" ] || wv_units_enable || wv_problem "cannot enable run $2's systemd units"
}

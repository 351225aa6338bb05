# --- install: $1 NAME, $2 INSTALL_PATH, $3 MODE (octal), $4 SHA256, $5 KIND,
# $6 SCHEDULE, $7 WRAPPER (file text), $8 MANIFEST (backup false), $9 MANIFEST (backup true).
# The script body arrives on stdin. Prints `wavectl-install ok backup=0|1` last.
umask 077
wv_init "$1"
IP=$2 MODE=$3 SHA=$4 KIND=$5 SCHED=$6 WRAPPER=$7 MAN0=$8 MAN1=$9
case $IP in /*) ;; *) wv_die "install path must be absolute" 65 ;; esac
case $IP in */ | */. | */..) wv_die "install path must name a file" 65 ;; esac
case $MODE in '' | *[!01234567]*) wv_die "invalid mode" 65 ;; esac
case $SHA in '' | *[!0123456789abcdef]*) wv_die "invalid sha256" 65 ;; esac
[ "${#SHA}" -eq 64 ] || wv_die "invalid sha256" 65
case $KIND in
  cron | systemd-timer)
    case $SCHED in '' | *[[:cntrl:]]*) wv_die "invalid schedule" 65 ;; esac
    [ "$KIND" = systemd-timer ] || case $SCHED in *%*) wv_die "invalid schedule: % in a cron line" 65 ;; esac
    ;;
  none) ;;
  *) wv_die "invalid activation kind" 65 ;;
esac
[ -d "$IP" ] && [ ! -L "$IP" ] && wv_die "install path is a directory" 65

mkdir -p "$WV_DIR" && chmod 0700 "$WV_ROOT" "$WV_DIR" || wv_die "cannot create $WV_DIR"
# What a removal needs, recorded before install_path is touched.
printf '%s' "$IP" > "$WV_DIR/install_path.tmp" && mv -f "$WV_DIR/install_path.tmp" "$WV_DIR/install_path" ||
  wv_die "cannot write $WV_DIR/install_path"
grep -qx "$SHA" "$WV_DIR/sha256s" 2>/dev/null || printf '%s\n' "$SHA" >> "$WV_DIR/sha256s" ||
  wv_die "cannot write $WV_DIR/sha256s"
cat /proc/sys/kernel/random/boot_id > "$WV_DIR/boot_id" 2>/dev/null || rm -f "$WV_DIR/boot_id"

PARENT=${IP%/*}
[ -n "$PARENT" ] || PARENT=/
(umask 022 && mkdir -p "$PARENT") || wv_die "cannot create the directory of the install path"
TMP=$IP.wavectl-new
rm -f "$TMP"
if ! cat > "$TMP"; then rm -f "$TMP"; wv_die "cannot write the script to a temporary file"; fi
GOT=$(wv_sha "$TMP")
if [ "$GOT" != "$SHA" ]; then
  rm -f "$TMP"
  wv_die "sha256 mismatch: expected $SHA, got ${GOT:-nothing}; nothing installed" 66
fi
# The backup is decided once per NAME: the pre-wavectl original (or its absence).
if [ ! -f "$WV_MANIFEST" ] && ! wv_exists "$WV_DIR/backup" && [ ! -e "$WV_DIR/backup.none" ]; then
  if wv_exists "$IP"; then
    rm -f "$WV_DIR/backup.tmp"
    if ! { cp -Pp "$IP" "$WV_DIR/backup.tmp" && mv -f "$WV_DIR/backup.tmp" "$WV_DIR/backup"; }; then
      rm -f "$TMP" "$WV_DIR/backup.tmp"
      wv_die "cannot back up the file at the install path; nothing installed"
    fi
  else
    : > "$WV_DIR/backup.none" || wv_die "cannot write $WV_DIR/backup.none"
  fi
fi
if ! { chmod "$MODE" "$TMP" && mv -f "$TMP" "$IP"; }; then
  rm -f "$TMP"
  wv_die "cannot put the script in place"
fi
{ printf '%s' "$WRAPPER" > "$WV_RUN.tmp" && chmod 0755 "$WV_RUN.tmp" && mv -f "$WV_RUN.tmp" "$WV_RUN"; } ||
  wv_die "cannot write the wrapper $WV_RUN"
BACKUP=0
MAN=$MAN0
if wv_exists "$WV_DIR/backup"; then BACKUP=1 MAN=$MAN1; fi
{ printf '%s\n' "$MAN" > "$WV_MANIFEST.tmp" && mv -f "$WV_MANIFEST.tmp" "$WV_MANIFEST"; } ||
  wv_die "cannot write the manifest"

# Activation last: nothing runs the script before everything above is in place.
case $KIND in
  cron)
    wv_drop_units > /dev/null
    CT=/etc/cron.d/.$WV_UNIT.tmp
    (umask 022 && mkdir -p /etc/cron.d) || wv_die "cannot create /etc/cron.d"
    {
      printf '# wavectl %s: written by wavectl, removed by its rollback or purge; do not edit\n' "$WV_NAME" &&
        printf 'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' &&
        printf '%s root %s\n' "$SCHED" "$WV_RUN" &&
        printf '@reboot root %s guard\n' "$WV_RUN"
    } > "$CT" && chmod 0644 "$CT" && mv -f "$CT" "$WV_CRON" || { rm -f "$CT"; wv_die "cannot write $WV_CRON"; }
    ;;
  systemd-timer)
    wv_drop_cron > /dev/null
    (umask 022 && mkdir -p "$WV_UNITDIR") || wv_die "cannot create $WV_UNITDIR"
    U=$WV_UNITDIR/$WV_UNIT
    {
      printf '[Unit]\nDescription=wavectl: %s\n\n[Service]\nType=oneshot\nExecStart=%s\n' "$WV_NAME" "$WV_RUN" > "$U.service.tmp" &&
        printf '[Unit]\nDescription=wavectl timer: %s\n\n[Timer]\nOnCalendar=%s\n\n[Install]\nWantedBy=timers.target\n' "$WV_NAME" "$SCHED" > "$U.timer.tmp" &&
        printf '[Unit]\nDescription=wavectl boot guard: %s\nBefore=%s.timer\n\n[Service]\nType=oneshot\nExecStart=%s guard\n\n[Install]\nWantedBy=multi-user.target\n' "$WV_NAME" "$WV_UNIT" "$WV_RUN" > "$U-guard.service.tmp" &&
        chmod 0644 "$U.service.tmp" "$U.timer.tmp" "$U-guard.service.tmp" &&
        mv -f "$U.service.tmp" "$U.service" && mv -f "$U-guard.service.tmp" "$U-guard.service" &&
        mv -f "$U.timer.tmp" "$U.timer"
    } || { rm -f "$U.service.tmp" "$U.timer.tmp" "$U-guard.service.tmp"; wv_die "cannot write the systemd units"; }
    if wv_systemd; then
      { systemctl daemon-reload && systemctl enable "$WV_UNIT-guard.service" &&
        systemctl enable --now "$WV_UNIT.timer"; } >&2 || wv_die "cannot enable $WV_UNIT.timer"
    fi
    ;;
  none)
    wv_drop_cron > /dev/null
    wv_drop_units > /dev/null
    ;;
esac
printf 'wavectl-install ok backup=%s\n' "$BACKUP"

# --- purge --path: $1 PATH (absolute, a script wavectl never installed), $2 seconds to
# wait for killed processes, $3 FORCE (1: even a file that belongs to a package, or a
# link that leads to a protected path), $4 PROTECTED (the controller's list, see
# wv_protected). Disables what schedules PATH (cron lines commented out, systemd units
# disabled and moved out of /etc or masked), kills what runs it (its script argument or
# executable *is* PATH: never what a link at PATH leads to), keeps a copy of every file
# it changes (and of the script) under /var/lib/wavectl/purged/<UTC time>/<original
# path>, removes PATH (a link: the link), verifies. Nothing is followed through a link.
# Report lines (values hex): found, changed, saved, note, problem; `killed N`,
# `removed 0|1`, `clean 0|1`, then `wavectl-purge-path done`.
umask 077
WV_P=$1
WV_PP_DIR=
WV_PP_REMOVED=0

wv_pp_refuse() {
  wv_problem "refused $WV_P: $1"
  printf 'killed 0\nremoved 0\nclean 0\nwavectl-purge-path done\n'
  exit 65
}
case $WV_P in
  '') wv_pp_refuse "empty path" ;;
  /) wv_pp_refuse "the root directory" ;;
  /*) ;;
  *) wv_pp_refuse "not an absolute path" ;;
esac
case $WV_P/ in */../* | */./* | *//*) wv_pp_refuse "not a plain path ('..', '.' or '//')" ;; esac
case $WV_P in
  /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) wv_pp_refuse "under /proc, /sys or /dev" ;;
  "$WV_ROOT/purged" | "$WV_ROOT/purged/"*) wv_pp_refuse "under $WV_ROOT/purged" ;;
esac
# No control characters (tr drops them; a trailing newline shows as a difference too).
[ "$(printf '%s' "$WV_P" | tr -d '\001-\037\177')" = "$WV_P" ] || wv_pp_refuse "control characters"
wv_realdir "$WV_P" && wv_pp_refuse "a directory"
if wv_exists "$WV_P" && [ ! -f "$WV_P" ] && [ ! -L "$WV_P" ]; then
  wv_pp_refuse "not a regular file"
fi
if [ "${3-0}" != 1 ] && wv_exists "$WV_P" && wv_pkg_owner "$WV_P"; then
  wv_pp_refuse "it belongs to package $WV_PKG; pass --force to purge it anyway"
fi
if [ "${3-0}" != 1 ] && wv_leads_to_protected "$WV_P" "${4-}"; then
  wv_pp_refuse "it leads to $WV_VAL, a path wavectl protects; pass --force to purge it anyway"
fi

# wv_pp_awk MODE FILE: with MODE
#   list: the lines of FILE that call PATH, as `LINENO: LINE`;
#   edit: FILE with those lines prefixed by `#wavectl-purged# `, every other byte kept;
#   unit: the ExecStart*= lines of FILE whose command references PATH, as `LINENO: LINE`.
# A line calls PATH if PATH occurs in it as a whole word: preceded by the line start,
# blank, quote, backtick or one of ;|&( and followed by the line end, blank, quote,
# backtick, CR or one of ;|&)<> . Comment lines (first non-blank '#') never call it.
# PATH reaches awk through ENVIRON (no escape processing), is found with index():
# never a regex.
wv_pp_awk() {
  _anl=
  [ -n "$(tail -c 1 "$2" 2>/dev/null)" ] || _anl=1
  WVP=$WV_P WVM=$1 WVNL=$_anl LC_ALL=C awk '
function calls(s,   p, n, i, j, b, a) {
  p = ENVIRON["WVP"]; n = length(p); j = 0
  while ((i = index(substr(s, j + 1), p)) > 0) {
    j += i
    b = (j > 1) ? substr(s, j - 1, 1) : ""
    a = substr(s, j + n, 1)
    if ((b == "" || index(PRE, b) > 0) && (a == "" || index(POST, a) > 0)) return 1
  }
  return 0
}
BEGIN { m = ENVIRON["WVM"]; PRE = " \t\"\047`;|&("; POST = " \t\"\047`;|&)<>\r" }
m == "unit" {
  if ($0 ~ /^[ \t]*ExecStart[A-Za-z]*[ \t]*=/) {
    v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/^[-@+!:]+/, "", v)
    if (calls(v)) print NR ": " $0
  }
  next
}
{
  c = ($0 !~ /^[ \t]*#/) && calls($0)
  if (m == "list") { if (c) print NR ": " $0; next }
  if (NR > 1) printf "\n"
  if (c) printf "%s", "#wavectl-purged# "
  printf "%s", $0
}
END { if (m == "edit" && NR > 0 && ENVIRON["WVNL"] != "") printf "\n" }
' < "$2"
}

# wv_pp_save FILE: an exact copy (cp -P --preserve=all, compared with wv_same) at
# $WV_PP_DIR/FILE; the directory
# is made on first use. Fails (and copies nothing) if the copy is not exact.
wv_pp_save() {
  if [ -z "$WV_PP_DIR" ]; then
    mkdir -p "$WV_ROOT/purged" || return 1
    _ppd=$WV_ROOT/purged/$(date -u +%Y%m%dT%H%M%SZ)
    mkdir "$_ppd" 2>/dev/null || { _ppd=$_ppd-$$; mkdir "$_ppd" || return 1; }
    WV_PP_DIR=$_ppd
  fi
  _sd=$WV_PP_DIR$1
  wv_exists "$_sd" && return 0
  if mkdir -p "${_sd%/*}" && cp -P --preserve=all "$1" "$_sd" 2>/dev/null && wv_same "$1" "$_sd"; then
    wv_out saved "$_sd"
  else
    rm -f "$_sd"
    return 1
  fi
}

# wv_pp_found FILE LINES: one `found` line per `LINENO: LINE` of LINES.
wv_pp_found() {
  printf '%s\n' "$2" | while IFS= read -r _fl; do wv_out found "$1:$_fl"; done
}

# wv_pp_edit FILE: comment out its lines that call PATH, after keeping an exact copy;
# written in a private directory made beside it (by cp -p: the mode and owner of what it
# reads) and renamed over it. A symlink is replaced by the edited file, never written
# through: what it leads to stays as it is.
wv_pp_edit() {
  _ef=$1
  if ! wv_pp_save "$_ef"; then
    wv_problem "cannot keep a copy of $_ef: left unchanged"
    return 1
  fi
  if wv_tmpdir "${_ef%/*}" && cp -p "$_ef" "$WV_TMPD/f" && wv_pp_awk edit "$_ef" > "$WV_TMPD/f" &&
    mv -fT "$WV_TMPD/f" "$_ef" && rmdir "$WV_TMPD"; then
    wv_out changed "$_ef"
  else
    [ -z "$WV_TMPD" ] || rm -rf "$WV_TMPD"
    wv_problem "cannot rewrite $_ef"
  fi
}

# wv_pp_remove FILE: keep a copy, then delete it.
wv_pp_remove() {
  if ! wv_pp_save "$1"; then
    wv_problem "cannot keep a copy of $1: not removed"
    return 1
  fi
  rm -f "$1" && ! wv_exists "$1"
}

# wv_pp_cron_scan MODE: every cron file (crontab, cron.d, user crontabs) and every
# script in /etc/cron.{hourly,daily,weekly,monthly} that calls PATH. MODE fix: report,
# copy and comment out (a run-parts entry that is PATH or a symlink to it is moved
# out instead: a link to PATH itself, or, PATH being a file, one that leads to that
# file); MODE check: a problem for each one still calling it.
wv_pp_cron_scan() {
  _real=
  [ -L "$WV_P" ] || _real=$(readlink -f -- "$WV_P" 2>/dev/null) || _real=$WV_P
  for _cf in /etc/crontab /etc/cron.d/* /var/spool/cron/crontabs/* /var/spool/cron/* \
    /etc/cron.hourly/* /etc/cron.daily/* /etc/cron.weekly/* /etc/cron.monthly/*; do
    wv_exists "$_cf" || continue
    case $_cf in
      /etc/cron.hourly/* | /etc/cron.daily/* | /etc/cron.weekly/* | /etc/cron.monthly/*)
        if [ "$_cf" = "$WV_P" ] || { [ -L "$_cf" ] && { [ "$(readlink -- "$_cf")" = "$WV_P" ] ||
          { [ -n "$_real" ] && [ "$(readlink -f -- "$_cf")" = "$_real" ]; }; }; }; then
          if [ "$1" = check ]; then
            wv_problem "$_cf is still there"
          else
            wv_out found "$_cf: run by run-parts"
            if [ "$_cf" = "$WV_P" ]; then
              wv_pp_remove "$_cf" && WV_PP_REMOVED=1 && wv_out changed "$_cf"
            else
              wv_pp_remove "$_cf" && wv_out changed "$_cf"
            fi
          fi
          continue
        fi
        ;;
    esac
    [ -f "$_cf" ] || continue
    grep -qsF -e "$WV_P" "$_cf" || continue
    _lines=$(wv_pp_awk list "$_cf")
    [ -n "$_lines" ] || continue
    if [ "$1" = check ]; then
      wv_problem "$_cf still calls it"
    else
      wv_pp_found "$_cf" "$_lines"
      wv_pp_edit "$_cf"
    fi
  done
}

# wv_pp_units MODE: systemd services whose ExecStart*= runs PATH. MODE fix: disable
# --now (and a .timer of the same name) when systemd runs; a unit in /etc is copied
# and moved out (with its timer and .wants links); a vendor unit (/lib, /usr/lib) is
# masked, never edited. MODE check: a problem for a unit still in /etc.
wv_pp_units() {
  _seen=$WV_NL
  _reload=
  for _uf in "$WV_UNITDIR"/*.service /lib/systemd/system/*.service /usr/lib/systemd/system/*.service; do
    [ -f "$_uf" ] || continue
    grep -qsF -e "$WV_P" "$_uf" || continue
    _lines=$(wv_pp_awk unit "$_uf")
    [ -n "$_lines" ] || continue
    _etc=
    case $_uf in "$WV_UNITDIR"/*) _etc=1 ;; esac
    if [ -z "$_etc" ]; then
      # /lib may be /usr/lib: one file, seen twice.
      _rp=$(readlink -f "$_uf")
      case $_seen in *"$WV_NL$_rp$WV_NL"*) continue ;; esac
      _seen=$_seen$_rp$WV_NL
    fi
    if [ "$1" = check ]; then
      [ -n "$_etc" ] && wv_problem "$_uf still runs it"
      continue
    fi
    wv_pp_found "$_uf" "$_lines"
    _un=${_uf##*/}
    _tn=${_un%.service}.timer
    _timer=
    for _d in "$WV_UNITDIR" /lib/systemd/system /usr/lib/systemd/system; do
      wv_exists "$_d/$_tn" && _timer=$_d/$_tn && break
    done
    if wv_systemd; then
      _reload=1
      systemctl disable --now "$_un" >/dev/null 2>&1
      systemctl is-active --quiet "$_un" 2>/dev/null && wv_problem "$_un is still active"
      if [ -n "$_timer" ]; then
        systemctl disable --now "$_tn" >/dev/null 2>&1
        if systemctl is-active --quiet "$_tn" 2>/dev/null; then
          wv_problem "$_tn is still active"
        else
          wv_out changed "$_timer"
        fi
      fi
    fi
    if [ -n "$_etc" ]; then
      for _l in "$WV_UNITDIR"/*.wants/"$_un" "$WV_UNITDIR"/*.wants/"$_tn" "$_uf" \
        "$WV_UNITDIR/$_tn"; do
        wv_exists "$_l" || continue
        if wv_pp_remove "$_l"; then
          wv_out changed "$_l"
        else
          wv_problem "cannot move $_l out of $WV_UNITDIR"
        fi
      done
      _reload=1
    elif wv_systemd; then
      if systemctl mask "$_un" >/dev/null 2>&1; then
        wv_out changed "$_uf"
      else
        wv_problem "cannot mask $_un"
      fi
      if [ -n "$_timer" ] && [ "${_timer#"$WV_UNITDIR"/}" = "$_timer" ]; then
        systemctl mask "$_tn" >/dev/null 2>&1 || wv_problem "cannot mask $_tn"
      fi
    else
      wv_out note "vendor unit $_uf runs it; systemd is not running: not masked"
    fi
  done
  if [ -n "$_reload" ] && wv_systemd; then
    systemctl daemon-reload >/dev/null 2>&1 || wv_problem "systemctl daemon-reload failed"
  fi
}

# 1. What schedules it, first: nothing may start it again.
wv_pp_cron_scan fix
wv_pp_units fix

# 2. What runs it (and its children).
wv_ancestors
wv_match_procs "$WV_P" ""
for _p in $WV_HITS; do
  _p=${_p#*:}
  _cl=$(tr '\0' ' ' < "/proc/$_p/cmdline" 2>/dev/null)
  wv_out found "process $_p: ${_cl% }"
done
wv_kill_procs 0 "" "$WV_P" "" "$2"
printf 'killed %s\n' "$WV_KILLED"
[ -z "$WV_LEFT" ] || wv_problem "still running after SIGKILL:$WV_LEFT"

# 3. The script: a copy kept, then removed.
if wv_exists "$WV_P"; then
  wv_out found "$WV_P"
  if [ -L "$WV_P" ]; then
    wv_out note "$WV_P is a symlink to $(readlink "$WV_P"): the link is removed, its target kept"
  fi
  if wv_pp_remove "$WV_P"; then WV_PP_REMOVED=1; else wv_problem "cannot remove $WV_P"; fi
fi
printf 'removed %s\n' "$WV_PP_REMOVED"

# 4. Verify.
wv_exists "$WV_P" && wv_problem "$WV_P is still there"
wv_match_procs "$WV_P" ""
_left=
for _p in $WV_HITS; do _left="$_left ${_p#*:}"; done
[ -z "$_left" ] || wv_problem "still running it:$_left"
wv_pp_cron_scan check
wv_pp_units check
printf 'clean %s\n' "$WV_CLEAN"
printf 'wavectl-purge-path done\n'

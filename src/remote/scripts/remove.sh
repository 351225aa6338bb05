# --- remove: $1 NAME, $2 INSTALL_PATH (empty: read it from the host), $3 seconds to
# wait for killed processes. Report lines (values hex) end with `wavectl-remove done`.
umask 077
wv_init "$1"
wv_remove_all "$2" "$3"
printf 'wavectl-remove done\n'

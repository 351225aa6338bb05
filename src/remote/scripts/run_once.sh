# --- run once: $1 NAME. One supervised run through the wrapper; exits with its code.
wv_init "$1"
[ -x "$WV_RUN" ] || wv_die "$WV_NAME is not installed here (no $WV_RUN)" 78
exec "$WV_RUN"

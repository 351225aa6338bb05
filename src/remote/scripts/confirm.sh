# --- confirm: $1 NAME. Manifest state probation -> confirmed (atomic rewrite).
umask 077
wv_init "$1"
st=$(wv_state)
case $st in
  confirmed) ;;
  probation) wv_set_state confirmed || wv_die "cannot rewrite $WV_MANIFEST" ;;
  '') wv_die "$WV_NAME is not installed here" 78 ;;
  *) wv_die "$WV_NAME is $st here; not confirming it" 78 ;;
esac
st=$(wv_state)
[ "$st" = confirmed ] || wv_die "manifest state is ${st:-unreadable} after confirm"
printf 'wavectl-confirm ok state=confirmed\n'

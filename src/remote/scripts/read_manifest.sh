# --- read manifest: $1 NAME. `wavectl-manifest` then the JSON, or `wavectl-manifest none`.
wv_init "$1"
if [ -f "$WV_MANIFEST" ]; then
  printf 'wavectl-manifest\n'
  cat "$WV_MANIFEST" || exit 1
else
  printf 'wavectl-manifest none\n'
fi

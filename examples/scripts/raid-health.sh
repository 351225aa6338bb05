#!/bin/sh
# Example RAID health check: reads the software-RAID status and reports degraded
# arrays. Harmless: it only reads /proc/mdstat. Exit 0 = healthy, 1 = degraded.
set -u

mdstat=/proc/mdstat
if [ ! -r "$mdstat" ]; then
    echo "ok: no software RAID ($mdstat not present)"
    exit 0
fi

# A member list like [UU_] has an underscore for every failed disk.
degraded=$(grep -c '\[[U_]*_[U_]*\]' "$mdstat" 2>/dev/null || true)
if [ "${degraded:-0}" -gt 0 ]; then
    echo "degraded: $degraded array(s) with failed members"
    grep -B1 '\[[U_]*_[U_]*\]' "$mdstat"
    exit 1
fi

echo "ok: all arrays healthy"
exit 0

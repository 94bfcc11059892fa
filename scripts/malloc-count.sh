#!/usr/bin/env bash
# Counts malloc-family calls (malloc, calloc, realloc, posix_memalign, aligned_alloc) of a command and of every
# process it starts, through an LD_PRELOAD shim (scripts/malloc-count.c, built with cc into a temporary folder).
# Each process that exits normally prints "EXECUTABLE PID COUNT" to standard error at the end. A process killed by
# a signal prints nothing. Per message: run the same load at two message counts and divide the difference.
#   scripts/malloc-count.sh .build/release/bench producer -w 64 -s 1024 --messages 20000
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG ...]" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/malloc-count-XXXXXX)"
trap 'rm -rf "$work"' EXIT
cc -O2 -shared -fPIC -o "$work/libmc.so" "$here/malloc-count.c"
status=0
MC_OUT="$work/counts" LD_PRELOAD="$work/libmc.so" "$@" || status=$?
[ -f "$work/counts" ] && grep -v "/rm " "$work/counts" >&2 || true
exit $status

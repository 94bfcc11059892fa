#!/usr/bin/env bash
# Installs the system packages the build and tests need (liburing for io_uring, libdeflate for CRC32,
# chromium for the report test), if missing.
set -euo pipefail
missing=()
for pkg in liburing libdeflate; do
    pkg-config --exists "$pkg" 2>/dev/null || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing liburing-dev libdeflate-dev pkg-config (missing: ${missing[*]})"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq liburing-dev libdeflate-dev pkg-config >/dev/null
fi

# Headless Chromium renders the bench report and the dashboard in the tests (screenshots must show charts and data).
if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (for the report rendering test)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium >/dev/null
fi

# iproute2 builds the simulated hosts of the multi-host test (network namespaces). Only as root: without root the
# test is skipped anyway, so no sudo prompt for it.
if [ "$(id -u)" -eq 0 ] && ! command -v ip >/dev/null 2>&1 && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
    echo "setup: installing iproute2 (for the multi-host test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq iproute2 >/dev/null
fi

# `setup.sh nats` / `setup.sh redis`: the peers of `make bench-matrix` (NATS JetStream, Redis Streams). Tests that
# need them are skipped without them.
install_peer() {  # command, Debian package
    if command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; then return; fi
    echo "setup: installing $2 (a peer of the benchmark)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "$2" >/dev/null
}
if [ "${1:-}" = "nats" ]; then install_peer nats-server nats-server; fi
if [ "${1:-}" = "redis" ]; then install_peer redis-server redis-server; fi

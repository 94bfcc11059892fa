#!/usr/bin/env bash
# Client compatibility: the official RocketMQ C++ client 1.2.3 (PyPI `rocketmq` 0.4.4) against real
# mqnamesrv/mqbroker processes from the debug build, mixed Swift/C++ clients, and the bench report rendered
# by headless Chromium (checked with Pillow), and every mqdashboard page in Chromium against a real cluster. Sets up its own venv under .build/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build/venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import rocketmq.client, pytest, PIL" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check rocketmq==0.4.4 pytest pillow
fi
BUILD_DIR="$(swift build --show-bin-path)" "$VENV/bin/python" -m pytest -q Tests/compat "$@"

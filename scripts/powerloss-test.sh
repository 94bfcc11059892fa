#!/usr/bin/env bash
# Power loss: the broker's store on powerfs (Tests/powerloss/powerfs.py, a FUSE file system that keeps only
# what was fsynced), the power cut at seeded random moments under load from the official C++ client, then
# checked after a remount: every acknowledged SYNC_FLUSH message served intact, recovery, config files.
# Needs /dev/fuse and root (mount(2)); without them every test is skipped with the reason, never passed.
# The file system is standard-library Python: nothing to install but the compat venv (PyPI rocketmq 0.4.4,
# pytest), shared with scripts/compat-test.sh. Arguments go to pytest; knobs are POWERLOSS_* variables
# (Tests/powerloss/README.md), e.g. POWERLOSS_ROUNDS=20 for a longer run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build/venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import rocketmq.client, pytest" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check rocketmq==0.4.4 pytest pillow
fi
BUILD_DIR="$(swift build --show-bin-path)"
for tool in mqbroker mqnamesrv; do
    [ -x "$BUILD_DIR/$tool" ] || { echo "powerloss-test: $BUILD_DIR/$tool is missing: run swift build first" >&2; exit 1; }
done
BUILD_DIR="$BUILD_DIR" "$VENV/bin/python" -m pytest -q -rsx Tests/powerloss "$@"

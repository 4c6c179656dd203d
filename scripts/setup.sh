#!/usr/bin/env bash
# Creates .venv with tkeflow installed (editable). With --test: the test extra too, and tccli in its
# own venv (.venv-tccli), because tccli pulls the all-in-one Tencent Cloud SDK, which must not be
# mixed with the per-service packages tkeflow uses. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
if [ "${1:-}" = "--test" ] && [ ! -x .venv-tccli/bin/tccli ]; then
  "$PYTHON" -m venv .venv-tccli
  .venv-tccli/bin/python -m pip install -q --disable-pip-version-check "tccli==3.1.189.1"
fi

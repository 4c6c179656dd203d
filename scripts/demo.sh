#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the demo on the twin; extra arguments go to `tkeflow demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tkeflow demo "$@"

#!/usr/bin/env bash
# The crash and fault campaign of issue 15 (by hand: about 45 minutes today): the fault matrix over every
# procedure and the Prefect-server-gone drill (pytest -m chaos, tests/chaos/), then every procedure
# killed with SIGKILL at every boundary of its demo config and rerun (benchmarks/chaos.py, which prints
# the flow x boundary x outcome table and ends with kill_points_passed: P/T). Extra arguments go to
# benchmarks/chaos.py (e.g. --flow gpu-pool). The twin's lifecycles are set short by the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/python -m pytest -p no:xdist -m chaos tests/chaos
exec .venv/bin/python benchmarks/chaos.py "$@"

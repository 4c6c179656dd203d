#!/usr/bin/env bash
# The crash and fault campaign of issue 15 (CI runs it after the main suite and the production tests):
# the fault matrix over every procedure and the Prefect-server-gone drill (pytest -m chaos, tests/chaos/),
# then every procedure killed with SIGKILL at every boundary of its demo config and rerun
# (benchmarks/chaos.py: each kill point starts from a twin snapshot of the procedure's world; the
# points run in TKEFLOW_CHAOS_LANES lanes, default 3, each with its own twin and Prefect server). It
# prints the flow x boundary x outcome table and ends with kill_points_passed: P/T; exit 0 only when
# every kill point passed. Extra arguments go to benchmarks/chaos.py (e.g. --flow gpu-pool).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/python -m pytest -p no:xdist -m chaos tests/chaos
exec .venv/bin/python benchmarks/chaos.py --lanes "${TKEFLOW_CHAOS_LANES:-3}" "$@"

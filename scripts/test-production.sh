#!/usr/bin/env bash
# Prefect as people run it in production (issue 16): a real `prefect server start`, a process work
# pool with two workers (tests/production/test_work_pool.py), and the Prefect UI driven in headless
# Chromium (tests/production/test_browser.py). Sets up .venv with the test and browser extras and
# Debian's chromium first. Extra arguments go to pytest. The browser test prints its screenshot folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test --browser
exec .venv/bin/python -m pytest -p no:xdist -m "production or browser" -s tests/production "$@"

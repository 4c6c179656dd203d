#!/usr/bin/env bash
# Creates .venv with tkeflow installed (editable). With --test: the test extra too, and tccli in its
# own venv (.venv-tccli), because tccli pulls the all-in-one Tencent Cloud SDK, which must not be
# mixed with the per-service packages tkeflow uses. With --browser (after --test or alone): Debian's
# chromium through apt-get when /usr/bin/chromium is missing, and the browser extra (Playwright for
# Python, which drives that chromium; Playwright's own browser download is never used).
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
test=false browser=false
for arg in "$@"; do
  case "$arg" in
    --test) test=true ;;
    --browser) browser=true ;;
    *) echo "usage: scripts/setup.sh [--test] [--browser]" >&2; exit 2 ;;
  esac
done
extras=()
$test && extras+=(test)
$browser && extras+=(browser)
spec="."
[ ${#extras[@]} -gt 0 ] && spec=".[$(IFS=,; echo "${extras[*]}")]"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e "${spec}"
if $test && [ ! -x .venv-tccli/bin/tccli ]; then
  "$PYTHON" -m venv .venv-tccli
  .venv-tccli/bin/python -m pip install -q --disable-pip-version-check "tccli==3.1.189.1"
fi
if $browser && [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
fi

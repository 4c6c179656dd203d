"""`tkeflow demo` and its Prefect server, as a new user meets them (issue 16 item 2, server side).

- ``--keep-server`` without PREFECT_API_URL: the printed ``/runs`` address answers the Prefect UI's
  page to a browser (it once answered ``{"detail":"Not Found"}``: the temporary server served the API
  only), the API answers beside it, and Ctrl-C stops both.
- with a server of the user's (PREFECT_API_URL): the closing lines point at its UI and say it goes
  on; they never claim it stops or is served until Ctrl-C.
Both run the CLI in a fresh process on an empty configs folder (no procedure: the server is the
subject; tests/e2e/test_cli.py runs the full demo).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what a browser sends


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TKEFLOW_TWIN", "TENCENTCLOUD_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONUNBUFFERED="1")
    return env


def read_until(process: subprocess.Popen[str], pattern: str, timeout_s: float) -> tuple[re.Match[str], str]:
    """Lines of the process's stdout until one matches ``pattern`` (a reader thread bounds the wait)."""
    seen: list[str] = []
    found: dict[str, re.Match[str]] = {}
    done = threading.Event()

    def reader() -> None:
        for line in process.stdout or ():
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                found["match"] = match
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(timeout_s)
    if "match" not in found:
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s}s; output:\n{''.join(seen)[-4000:]}")
    return found["match"], "".join(seen)


def get(url: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": BROWSER_ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read().decode(errors="replace")


def test_kept_server_serves_the_prefect_ui_at_the_printed_runs_address(tmp_path):
    (tmp_path / "configs").mkdir()
    process = subprocess.Popen([sys.executable, "-m", "tkeflow.cli", "demo", "--keep-server", "--configs",
                                str(tmp_path / "configs")], cwd=ROOT, env=clean_env(tmp_path), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        match, before = read_until(process, r"(http://127\.0\.0\.1:\d+)/runs", timeout_s=240)
        address = match.group(1)

        status, content_type, page = get(f"{address}/runs")
        assert status == 200 and content_type.startswith("text/html"), (status, content_type, page[:300])
        assert "<!DOCTYPE html>" in page and "Not Found" not in page
        assert get(f"{address}/api/health")[2].strip() == "true"
        _, _, ui_settings = get(f"{address}/ui-settings")
        assert f'"api_url":"{address}/api"' in ui_settings  # the browser's UI calls this very server
        assert "Serving the Prefect UI" in before + (process.stdout.readline() if process.stdout else "")
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest[-3000:]
    assert "Traceback" not in before + rest
    with pytest.raises((urllib.error.URLError, OSError)):  # the kept server ends with the demo
        urllib.request.urlopen(f"{address}/api/health", timeout=5)


def test_with_a_server_of_yours_the_demo_says_it_goes_on(tmp_path, prefect_server):
    (tmp_path / "configs").mkdir()
    env = clean_env(tmp_path)
    env["PREFECT_API_URL"] = prefect_server

    done = subprocess.run([sys.executable, "-m", "tkeflow.cli", "demo", "--keep-server", "--configs",
                           str(tmp_path / "configs")], cwd=ROOT, env=env, text=True, capture_output=True, timeout=180)

    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert f"{prefect_server.removesuffix('/api')}/runs" in done.stdout
    assert "it goes on running after the demo" in done.stdout
    assert "stops" not in done.stdout and "until Ctrl-C" not in done.stdout  # nothing of the demo's to keep
    assert "Traceback" not in out  # and it did not wait for Ctrl-C: run() would have timed out

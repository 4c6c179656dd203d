"""The watch on a run's own temporary Prefect server (tkeflow/commands/server_watch.py, issue 15 item 3).

In the main suite, in a second: a real child process stands in for the server and is killed with
SIGKILL; the watching process (a fresh Python, since the watch ends its process) must end at once with
exit 1 and the one line, and must not when the run had finished first. The whole drill, a real
`tkeflow run` whose temporary server is killed, is tests/chaos/test_prefect_restart.py.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

WATCHING = """
import os, signal, subprocess, sys, threading, time
from tkeflow.commands import server_watch
# the stand-in server stops quietly on Ctrl-C, as uvicorn does (a bare sleep would print its own traceback)
server = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                           "signal.signal(signal.SIGINT, lambda *_: sys.exit(0)); print('up', flush=True); "
                           "time.sleep(60)"], stdout=subprocess.PIPE)
server.stdout.readline()  # started, as a real server is before any run uses it (a Ctrl-C mid-start is no case)
watcher = server_watch._Watcher(server, lambda line: print("failed:", line, flush=True))
watcher.thread.start()
if sys.argv[1] == "finished":
    watcher.stop()
print("killing", flush=True)
killed = time.monotonic()
if sys.argv[1] == "ctrl-c":  # SIGINT to the whole process group, as a terminal's Ctrl-C sends it
    with server_watch._noting_interrupts(watcher.interrupted):
        try:
            os.killpg(0, signal.SIGINT)
            threading.Event().wait(5)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
else:
    server.send_signal(signal.SIGKILL)
threading.Event().wait(5)  # the run goes on: only the watch can end it before this
print("still running after", round(time.monotonic() - killed, 1), flush=True)
"""


def _watch(case: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WATCHING, case], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT)}, start_new_session=True)  # its own group


def test_a_killed_temporary_server_ends_the_run_at_once_with_one_line_and_exit_1():
    done = _watch("running")

    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "went away mid-run" in line]
    assert len(lines) == 1 and "exit code -9" in lines[0] and "run the same command again" in lines[0], done.stdout
    assert "still running" not in done.stdout, "the watch ended the run, not its own end"


def test_a_server_stopping_after_the_run_finished_is_no_failure():
    done = _watch("finished")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "went away" not in done.stdout and "still running after" in done.stdout



def test_ctrl_c_stopping_run_and_server_together_is_said_as_an_interrupt_exit_130():
    """Ctrl-C reaches the temporary server too: the line names the interrupt, not a server that went away."""
    done = _watch("ctrl-c")

    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert "interrupted (Ctrl-C)" in done.stdout and "went away" not in done.stdout, done.stdout
    assert "still running" not in done.stdout

"""A run on its own temporary Prefect server ends at once when that server goes away (issue 15 item 3).

A helper of tkeflow/commands/run.py (no ``register``): ``run_manifest`` runs every flow inside
``watch_own_server``, so this holds for `tkeflow run`, `tkeflow plan` and the demo's runs alike.

Why: without PREFECT_API_URL a run's API server is the temporary one Prefect starts for it (its
SubprocessASGIServer, a child process; the demo's API-only server is the same object). That server
holds the run's whole state: flow and task run states, the cluster lock, the logs and events. Once
its process is gone, nothing the run still does can be recorded, and nobody will restart it. Prefect's
client does not know that: after a first connection it takes a refused connection for a server
restart and retries it 5 times, 2 s to 32 s apart (about a minute), in every request of every thread
(a task's state update, the lock's heartbeat, the log and event workers, the flow's crash report),
one after another. Seen (py-spy): a create-cluster run sat in ``_send_with_retry`` of a Secret
block read for minutes after its server was killed right after CreateCluster.

So the CLI starts that server itself (exactly as Prefect's ``get_client`` would: the same singleton,
the same settings) to hold its process handle, and a watcher thread waits for that process to exit
(a pidfd, else a poll of ``waitpid``: no request) while the flow runs. When it has exited, the run
ends as a killed run ends: one line saying what happened, exit code 1, no traceback, no verdict.
The cloud work already done is kept; every procedure converges on a rerun (the crash campaign of
issue 15 item 1 holds each flow to that), so the same command again finishes the job. A server of
one's own (PREFECT_API_URL) is not watched: Prefect's retries are what let a run ride out its restart.

The rerun needs one more thing: Prefect keeps concurrency leases in the server's memory by default,
so the cluster lock's slot (counted in the database) outlived the killed server while its lease did
not, and the rerun waited for that slot until its lock timeout. The temporary server keeps its
leases in files (Prefect's filesystem lease storage) beside its database instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tkeflow.errors import PermanentError

#: How often the watcher looks at the server's process (a non-blocking waitpid, no network) when it
#: cannot be told of its exit (no pidfd), and how often it checks that the run has not ended.
POLL_INTERVAL_S = 0.1
EXIT_SERVER_GONE, EXIT_INTERRUPTED = 1, 130  # 130: the shell's code for a run stopped by SIGINT
#: Prefect gives its temporary server 20 s to start: a loaded 2-core machine has been seen to need more.
START_TIMEOUT_S = 120
#: Prefect's own file-based store of concurrency leases (its default keeps them in the server's memory).
LEASE_STORAGE_ENV = "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"


def gone_message(pid: int, returncode: int | None, interrupted: bool = False) -> str:
    """The one line a run prints when its temporary server went away (with it, when Ctrl-C stopped both)."""
    if interrupted:  # Ctrl-C reaches the whole process group: the server stops at once with the run
        return ("interrupted (Ctrl-C): the run and its temporary Prefect server stopped here; the cloud work done "
                "so far is kept; run the same command again to finish (it converges on what was done)")
    return (f"the Prefect API server of this run (its temporary server, pid {pid}) went away mid-run (exit code "
            f"{returncode}): the run stopped here; the cloud work done so far is kept; run the same command again "
            "to finish (it converges on what was done)")


#: API URL -> the process of a server this process started for its runs (the demo's `prefect server start`).
STARTED_HERE: dict[str, subprocess.Popen[bytes]] = {}


def own_server_process() -> subprocess.Popen[bytes] | None:
    """The process of the temporary API server this run uses, started if needed; None for a server of one's own.

    No PREFECT_API_URL: Prefect's ephemeral SubprocessASGIServer, started here as ``get_client`` starts
    it (its ``start`` is idempotent: the flow's client finds it running). PREFECT_API_URL naming that
    server's address (the demo's temporary API-only server), or one in STARTED_HERE: its process too.
    """
    import prefect.settings
    from prefect.server.api.server import SubprocessASGIServer

    api_url = str(prefect.settings.PREFECT_API_URL.value() or "")
    if not api_url:
        if not prefect.settings.PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            return None  # Prefect will refuse to run without a server: it says so itself
        # Its cluster-lock leases in files beside its database (PREFECT_HOME), not in its memory: the next
        # run's temporary server on that database then knows them, and frees a dead run's lock
        # (tasks/lock.py) instead of finding its slot taken by a lease nobody knows, for ever.
        os.environ.setdefault(LEASE_STORAGE_ENV, FILE_LEASES)
        server = SubprocessASGIServer()
        _start(server)
        return server.server_process
    api_url = api_url.rstrip("/")
    for server in list(SubprocessASGIServer._instances.values()):  # noqa: SLF001 - Prefect's registry of them
        if server.server_process is not None and server.running and server.api_url == api_url:
            return server.server_process
    return STARTED_HERE.get(api_url)


def _exit_notice(pid: int) -> int | None:
    """A pidfd of ``pid`` (Linux 5.3+), readable once the process exits; None where there is none.

    Why not only poll: a refused connection fails at once in a Prefect client that never connected
    (a new one), and such a failure logs a traceback; told at once, the run ends before any does.
    """
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or the process already reaped
        return None


def _start(server: Any) -> None:
    """Start Prefect's temporary server, given at least START_TIMEOUT_S: a failure is one clear line."""
    import prefect.settings

    timeout = max(prefect.settings.PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), START_TIMEOUT_S)
    try:
        server.start(timeout=timeout)
    except RuntimeError as err:  # Prefect's "Timed out while attempting to connect to ephemeral ..."
        raise PermanentError(
            f"the temporary Prefect server for this run did not start within {timeout}s ({err}): on a busy machine "
            "set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or point PREFECT_API_URL at a running "
            "Prefect server", code="PrefectServerStart") from None


class _Watcher:
    """Watches the server's process from a daemon thread; on its exit, ``on_gone`` and the process ends."""

    def __init__(self, process: subprocess.Popen[bytes], on_gone: Callable[[str], None]):
        self.process, self.on_gone = process, on_gone
        self.stopped = threading.Event()
        self.deciding = threading.Lock()  # the run ending normally and the server going away: one wins
        self.interrupted = threading.Event()  # set by the SIGINT handler of watch_own_server
        self.thread = threading.Thread(target=self._watch, name="tkeflow-server-watch", daemon=True)

    def _watch(self) -> None:
        exited = _exit_notice(self.process.pid)
        try:
            while not self.stopped.is_set():
                if exited is not None:  # readable the moment the process exits: no poll's delay
                    select.select([exited], [], [], POLL_INTERVAL_S)
                else:
                    self.stopped.wait(POLL_INTERVAL_S)
                if self.process.poll() is not None:
                    self._gone()
        finally:
            if exited is not None:
                os.close(exited)

    def _gone(self) -> None:
        with self.deciding:
            if self.stopped.is_set():
                return  # the run had finished: the server stops with the process
            interrupted = self.interrupted.is_set()
            self.on_gone(gone_message(self.process.pid, self.process.returncode, interrupted))
            sys.stdout.flush()
            sys.stderr.flush()
            # Every thread of the run is in, or about to enter, a minute of retries per request
            # against a server that cannot come back: end the process as a kill would.
            os._exit(EXIT_INTERRUPTED if interrupted else EXIT_SERVER_GONE)

    def stop(self) -> None:
        with self.deciding:
            self.stopped.set()


@contextlib.contextmanager
def watch_own_server(on_gone: Callable[[str], None]) -> Iterator[int | None]:
    """While the body runs, end the process (exit 1) after ``on_gone(line)`` if the run's own temporary
    server exits; yields its pid (None: a server of one's own, not watched)."""
    process = own_server_process()
    if process is None:
        yield None
        return
    watcher = _Watcher(process, on_gone)
    watcher.thread.start()
    try:
        with _noting_interrupts(watcher.interrupted):
            yield process.pid
    finally:
        watcher.stop()


@contextlib.contextmanager
def _noting_interrupts(interrupted: threading.Event) -> Iterator[None]:
    """Python's Ctrl-C handler, which also sets ``interrupted`` (so the watch names the real cause); only
    where it is the handler in force (the main thread, SIGINT not ignored)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as before

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)

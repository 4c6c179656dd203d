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
the same settings) to hold its process handle, and a watcher thread polls the process (a local
``waitpid``, no request) while the flow runs. When it has exited, the run ends as a killed run ends:
one line saying what happened, exit code 1, no traceback, no verdict. The cloud work already done is
kept; every procedure converges on a rerun (the crash campaign of issue 15 item 1 holds each flow to
that), so the same command again finishes the job. A server of one's own (PREFECT_API_URL) is not
watched: Prefect's retries are what let a run ride out its restart.

The rerun needs one more thing: Prefect keeps concurrency leases in the server's memory by default,
so the cluster lock's slot (counted in the database) outlived the killed server while its lease did
not, and the rerun waited for that slot until its lock timeout. The temporary server keeps its
leases in files (Prefect's filesystem lease storage) beside its database instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

#: How often the watcher looks at the server's process: a non-blocking waitpid, no network.
POLL_INTERVAL_S = 0.1
EXIT_SERVER_GONE = 1
#: Prefect's own file-based store of concurrency leases (its default keeps them in the server's memory).
LEASE_STORAGE_ENV = "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"


def gone_message(pid: int, returncode: int | None) -> str:
    """The one line a run prints when its temporary server went away."""
    return (f"the Prefect API server of this run (its temporary server, pid {pid}) went away mid-run (exit code "
            f"{returncode}): the run stopped here; the cloud work done so far is kept; run the same command again "
            "to finish (it converges on what was done)")


def own_server_process() -> subprocess.Popen[bytes] | None:
    """The process of the temporary API server this run uses, started if needed; None for a server of one's own.

    No PREFECT_API_URL: Prefect's ephemeral SubprocessASGIServer, started here as ``get_client`` starts
    it (its ``start`` is idempotent: the flow's client finds it running). PREFECT_API_URL naming that
    server's address (the demo's temporary API-only server): its process too.
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
        server.start()
        return server.server_process
    for server in list(SubprocessASGIServer._instances.values()):  # noqa: SLF001 - Prefect's registry of them
        if server.server_process is not None and server.running and server.api_url == api_url.rstrip("/"):
            return server.server_process
    return None


class _Watcher:
    """Polls the server's process in a daemon thread; on its exit, ``on_gone`` and the process ends."""

    def __init__(self, process: subprocess.Popen[bytes], on_gone: Callable[[str], None]):
        self.process, self.on_gone = process, on_gone
        self.stopped = threading.Event()
        self.deciding = threading.Lock()  # the run ending normally and the server going away: one wins
        self.thread = threading.Thread(target=self._watch, name="tkeflow-server-watch", daemon=True)

    def _watch(self) -> None:
        while not self.stopped.wait(POLL_INTERVAL_S):
            if self.process.poll() is None:
                continue
            with self.deciding:
                if self.stopped.is_set():
                    return  # the run had finished: the server stops with the process
                self.on_gone(gone_message(self.process.pid, self.process.returncode))
                sys.stdout.flush()
                sys.stderr.flush()
                # Every thread of the run is in, or about to enter, a minute of retries per request
                # against a server that cannot come back: end the process as a kill would.
                os._exit(EXIT_SERVER_GONE)

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
        yield process.pid
    finally:
        watcher.stop()

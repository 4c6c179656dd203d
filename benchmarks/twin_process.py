"""The twin in its own process for the benchmarks: ``tkeflow twin serve --world FILE``.

Who uses it: the benchmarks (add_hosts, upgrade_nodes, fleet, ...). Why a process of its own: a
real cloud and real hosts run elsewhere; in the flow's process the twin's SSH key exchanges and API
handlers would compete with the flow for the interpreter lock and skew the figure. Its stderr goes to a file whose last lines are printed if it
dies, so a benchmark that loses its twin says why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV_LINES = 4  # TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, TKEFLOW_TWIN_ENDPOINT, TKEFLOW_TWIN


@contextlib.contextmanager
def twin_process(world: Path) -> Iterator[str]:
    """Serve ``world`` in a child process; set the env that points clients at it; yield its endpoint."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen([sys.executable, "-m", "tkeflow.cli", "twin", "serve", "--world", str(world)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            env = dict(process.stdout.readline().strip().split("=", 1) for _ in range(ENV_LINES))
            os.environ.update(env)
            yield env["TKEFLOW_TWIN_ENDPOINT"]
        finally:
            if process.poll() is not None:  # it died under the benchmark: say why
                errors.seek(0)
                tail = "\n".join(errors.read().splitlines()[-20:])
                print(f"twin process exited with {process.returncode}:\n{tail}", file=sys.stderr)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

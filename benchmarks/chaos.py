"""The crash campaign of issue 15: every procedure killed at every boundary, rerun, judged.

Run: ``python benchmarks/chaos.py [--flow NAME ...] [--count-only] [--lanes N]``. Starts the twin in
this process (it outlives the runs) and a temporary Prefect server (or uses PREFECT_API_URL), counts
each procedure's boundaries with a clean run of its demo config, then kills a run at every one of them
and reruns it (tests/chaos/harness.py): each kill point starts from a twin snapshot of the procedure's
world (POST /_twin/restore), built once per lane by clean runs of the configs before it.

Lanes (``--lanes N``, default 2, or TKEFLOW_CHAOS_LANES): the kill points are dealt round-robin to N
lanes; lane 0 is this process, lanes 1.. are child processes (``--lane I``), each with a twin and a
temporary Prefect server of its own: twins started alike give the same cluster IDs, and the lock, the
kubeconfig Secret block and the lock's Variable on a Prefect server are keyed by cluster ID, so two
lanes must never share a server. A lane mostly waits (a killed run's lock lease to lapse, the twin's
lifecycles), which is why lanes pay off even on 2 cores.

Prints the flow x boundary x outcome table, per procedure the kill points tried, passed and the
once-only actions seen twice (must be 0), where a kill point's time goes, ``campaign_seconds``, and
last ``kill_points_passed: P/T``. Exit 0 only when every kill point passed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import BOUNDARIES, PROCEDURES, Harness, Outcome, table  # noqa: E402

BY_NAME = {p.name: p for p in PROCEDURES}
Point = tuple[str, str, int]  # (procedure name, boundary, n)


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """PREFECT_API_URL when set, else a temporary Prefect server for the campaign."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        try:
            yield os.environ["PREFECT_API_URL"]
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@contextlib.contextmanager
def harness() -> Iterator[Harness]:
    from twin.server import Twin

    with prefect_api(), Twin.start() as twin, tempfile.TemporaryDirectory() as work:
        yield Harness(twin, Path(work))


def count_points(lane: Harness, names: list[str], every: int) -> list[Point]:
    """Every kill point of ``names`` (a clean run of each counts its boundaries)."""
    points: list[Point] = []
    for name in names:
        started = time.monotonic()
        counts = lane.count(BY_NAME[name])
        print(f"{name}: boundaries {counts} ({time.monotonic() - started:.1f}s world + clean run)", flush=True)
        points += [(name, b, n) for b in BOUNDARIES for n in range(1, counts[b] + 1, every)]
    return points


def run_points(lane: Harness, points: list[Point], tag: str) -> list[Outcome]:
    outcomes = []
    for name, boundary, n in points:
        outcome = lane.kill_and_rerun(BY_NAME[name], boundary, n)
        spent = " ".join(f"{k} {v:.1f}s" for k, v in outcome.seconds.items())
        print(f"  {tag}{name} {boundary} #{n}: {outcome.outcome} ({spent})", flush=True)
        outcomes.append(outcome)
    return outcomes


def start_lanes(points: list[Point], lanes: int, work: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Lanes 1..N-1 as child processes, each on its own twin and temporary Prefect server."""
    (work / "points.json").write_text(json.dumps(points))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # never share a server
    children = []
    for index in range(1, lanes):
        out = work / f"lane{index}.json"
        command = [sys.executable, __file__, "--lane", str(index), "--lanes", str(lanes),
                   "--points", str(work / "points.json"), "--out", str(out)]
        children.append((subprocess.Popen(command, env=env), out))
    return children


def stop_lanes(children: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Our own lanes that are still running (the campaign was interrupted): SIGTERM, so that each stops
    its twin and its Prefect server; SIGKILL only for one that does not go within 30 s."""
    for child, _ in children:
        if child.poll() is None:
            child.terminate()
    for child, _ in children:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(30)


def _quiet_twin_ssh() -> None:
    """A killed run's SSH sessions end with a reset, which the twin's SSH server (paramiko, in this
    process) logs as an error per kill point: expected here, and noise in the table's output."""
    logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)


def _exit_on_sigterm() -> None:
    """SIGTERM (CI's timeout, a lane stopped by its parent) unwinds like Ctrl-C: the twin and the
    temporary Prefect server are stopped by their context managers instead of being orphaned."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def gather(children: list[tuple[subprocess.Popen[bytes], Path]]) -> list[Outcome]:
    outcomes = []
    for child, out in children:
        code = child.wait()
        if code != 0 or not out.exists():
            raise RuntimeError(f"lane {out.stem} failed (exit {code}): its kill points were not judged")
        outcomes += [Outcome(**o) for o in json.loads(out.read_text())]
    return outcomes


def summary(outcomes: list[Outcome], names: list[str]) -> tuple[list[str], int, int]:
    lines, passed_all, tried_all = [], 0, 0
    for name in names:
        mine = [o for o in outcomes if o.flow == name]
        passed = sum(o.passed for o in mine)
        twice = sum(len(o.repeated) for o in mine)
        lines.append(f"{name}: kill points tried {len(mine)}, passed {passed}, once-only actions seen twice {twice}")
        passed_all, tried_all = passed_all + passed, tried_all + len(mine)
    return lines, passed_all, tried_all


def where_time_goes(outcomes: list[Outcome]) -> str:
    phases = ("restore", "killed", "rerun")
    means = {p: [o.seconds[p] for o in outcomes if p in o.seconds] for p in phases}
    return "per kill point, mean: " + ", ".join(f"{p} {sum(v) / len(v):.2f}s" for p, v in means.items() if v)


def report(outcomes: list[Outcome], names: list[str], started: float, every: int) -> int:
    order = {name: i for i, name in enumerate(names)}
    outcomes.sort(key=lambda o: (order[o.flow], BOUNDARIES.index(o.boundary), o.n))
    print(table(outcomes))
    for failed in (o for o in outcomes if not o.passed):
        print(f"--- {failed.flow} {failed.boundary} #{failed.n}: the run's last lines")
        print("\n".join(failed.log.splitlines()[-15:]))
    lines, passed, tried = summary(outcomes, names)
    print("\n".join(lines))
    if outcomes:
        print(where_time_goes(outcomes))
    print(f"campaign_seconds: {time.monotonic() - started:.0f}")
    if every > 1:
        print(f"sample: every {every}th boundary only, not the whole campaign")
    print(f"kill_points_passed: {passed}/{tried}")
    return 0 if passed == tried else 1


def lane_main(index: int, lanes: int, points_file: Path, out: Path) -> int:
    points = [tuple(p) for p in json.loads(points_file.read_text())][index::lanes]
    with harness() as lane:
        outcomes = run_points(lane, points, f"[lane {index}] ")  # type: ignore[arg-type]
    out.write_text(json.dumps([dataclasses.asdict(o) for o in outcomes]))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow", action="append", default=[],
                        help=f"only this procedure (repeatable): {', '.join(BY_NAME)}")
    parser.add_argument("--count-only", action="store_true", help="only count each procedure's boundaries")
    parser.add_argument("--every", type=int, default=1,
                        help="kill at every Nth boundary only (a quick sample; the campaign is 1: all)")
    parser.add_argument("--lanes", type=int, default=int(os.environ.get("TKEFLOW_CHAOS_LANES", "2")),
                        help="kill points run in N lanes at once, each with its own twin and Prefect server")
    parser.add_argument("--lane", type=int, help=argparse.SUPPRESS)  # a child lane (start_lanes)
    parser.add_argument("--points", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _exit_on_sigterm()
    _quiet_twin_ssh()
    if args.lane is not None:
        return lane_main(args.lane, args.lanes, args.points, args.out)
    unknown = [f for f in args.flow if f not in BY_NAME]
    if unknown:
        parser.error(f"unknown procedure {unknown}: choose from {', '.join(BY_NAME)}")
    names = [name for name in BY_NAME if not args.flow or name in args.flow]
    lanes = max(1, args.lanes)
    started = time.monotonic()
    with harness() as lane0, tempfile.TemporaryDirectory() as work:
        points = count_points(lane0, names, args.every)
        if args.count_only:
            print(f"kill points: {len(points)}")
            return 0
        children = start_lanes(points, lanes, Path(work)) if lanes > 1 else []
        try:
            outcomes = run_points(lane0, points[0::lanes], "[lane 0] " if lanes > 1 else "")
            outcomes += gather(children)
        finally:
            stop_lanes(children)
    return report(outcomes, names, started, args.every)


if __name__ == "__main__":
    sys.exit(main())

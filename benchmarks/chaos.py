"""The crash campaign of issue 15: every procedure killed at every boundary, rerun, judged.

Run: ``python benchmarks/chaos.py [--flow NAME ...] [--count-only]``. Starts the twin in this process
(it outlives the runs) and a temporary Prefect server (or uses PREFECT_API_URL), counts each flow's
boundaries with a clean run of its demo config, then kills a run at every one of them and reruns it
(tests/chaos/harness.py). Prints the flow x boundary x outcome table, then per flow the kill points
tried, passed, and the once-only actions seen twice (must be 0); last line ``kill_points_passed: P/T``.
Exit 0 only when every kill point passed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import BOUNDARIES, PROCEDURES, Harness, Outcome, table  # noqa: E402


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


def campaign(harness: Harness, flows: list[str], count_only: bool, every: int = 1) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for procedure in PROCEDURES:
        if flows and procedure.flow not in flows:
            continue
        started = time.monotonic()
        counts = harness.count(procedure)
        print(f"{procedure.flow}: boundaries {counts} ({time.monotonic() - started:.1f}s clean run)", flush=True)
        if count_only:
            continue
        for boundary in BOUNDARIES:
            for n in range(1, counts[boundary] + 1, every):  # every=1: every boundary (the campaign)
                outcome = harness.kill_and_rerun(procedure, boundary, n)
                print(f"  {outcome.flow} {outcome.boundary} #{n}: {outcome.outcome}", flush=True)
                outcomes.append(outcome)
    return outcomes


def summary(outcomes: list[Outcome], flows: list[str]) -> tuple[list[str], int, int]:
    lines, passed_all, tried_all = [], 0, 0
    for flow in flows:
        mine = [o for o in outcomes if o.flow == flow]
        passed = sum(o.passed for o in mine)
        twice = sum(len(o.repeated) for o in mine)
        lines.append(f"{flow}: kill points tried {len(mine)}, passed {passed}, once-only actions seen twice {twice}")
        passed_all, tried_all = passed_all + passed, tried_all + len(mine)
    return lines, passed_all, tried_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow", action="append", default=[], help="only this flow (repeatable)")
    parser.add_argument("--count-only", action="store_true", help="only count each flow's boundaries")
    parser.add_argument("--every", type=int, default=1,
                        help="kill at every Nth boundary only (a quick sample; the campaign is 1: all)")
    args = parser.parse_args()
    from twin.server import Twin

    started = time.monotonic()
    with prefect_api(), Twin.start() as twin, tempfile.TemporaryDirectory() as work:
        outcomes = campaign(Harness(twin, Path(work)), args.flow, args.count_only, args.every)
    if args.count_only:
        return 0
    print(table(outcomes))
    for failed in (o for o in outcomes if not o.passed):
        print(f"--- {failed.flow} {failed.boundary} #{failed.n}: the rerun's last lines")
        print("\n".join(failed.log.splitlines()[-15:]))
    flows = [p.flow for p in PROCEDURES if not args.flow or p.flow in args.flow]
    lines, passed, tried = summary(outcomes, flows)
    print("\n".join(lines))
    print(f"campaign_seconds: {time.monotonic() - started:.0f}")
    if args.every > 1:
        print(f"sample: every {args.every}th boundary only, not the whole campaign")
    print(f"kill_points_passed: {passed}/{tried}")
    return 0 if passed == tried else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a cross-region peering interconnect on the twin, against the waits nobody can avoid (issue 11).

Run: ``.venv/bin/python benchmarks/interconnect.py [--activation-s 40] [--probe-s 8] [--propagation-s 1]``.
Uses PREFECT_API_URL when set, else a temporary local Prefect server.

The unavoidable waits: the peering turns ACTIVE ``--activation-s`` after it is accepted, and one
round of probes (all pairs at once, R-NET-7) takes ``--probe-s``; so ``activation + probe`` is the
ideal. Route propagation (``--propagation-s``) is set too but has no place in the ideal: the flow
must hide it (the host check polls; the probe servers start while the routes propagate). The ratio
of the flow's wall time to the ideal is the flow's own cost (pre-flight, routes, the host check over
SSH, probe pods, Prefect's bookkeeping); target <= 1.2.

The twin runs in its own process (``tkeflow twin serve``), as a real cloud runs elsewhere, in the
world of tests/flows/interconnect_world.py (demo in ap-guangzhou, sh-peer in ap-shanghai). Prints
``name: value`` lines, ``ratio: N`` last.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.upgrade_nodes import prefect_server, twin_process  # noqa: E402  (after the path tweak)
from tests.flows import interconnect_world as iw  # noqa: E402
from tests.flows import upgrade_world as uw  # noqa: E402

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation-s", type=float, default=40.0, help="peering accepted -> ACTIVE in the twin")
    parser.add_argument("--probe-s", type=float, default=8.0, help="one probe pod's run in the twin")
    parser.add_argument("--propagation-s", type=float, default=1.0, help="CreateRoutes -> the route carries traffic")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from tkeflow.specs import InterconnectSpec

    timings = {"peering_activation": args.activation_s, "probe_run": args.probe_s,
               "route_propagation": args.propagation_s, "pod_ready": 0.2}
    with tempfile.TemporaryDirectory() as tmp, prefect_server():
        path, ids = iw.write_world(Path(tmp), timings=timings)
        with twin_process(path) as endpoint:
            spec = InterconnectSpec.model_validate({
                "type": "peering", "a": {"cluster_id": ids["demo"], "region": "ap-guangzhou"},
                "b": {"cluster_id": ids["sh"], "region": "ap-shanghai"}, "account_uin": "100000000001",
                "probe_timeout_s": 4 * args.probe_s,
                "ssh": {"private_key_file": str(ROOT / "configs" / "twin" / "keys" / "demo_ed25519")}})
            from flows.interconnect import interconnect

            started = time.monotonic()
            report = interconnect(spec=spec)
            wall = time.monotonic() - started
            calls = uw.calls(endpoint)
    ideal = args.activation_s + args.probe_s
    mutating = Counter(c["action"] for c in calls if c.get("mutating"))
    print(f"peering_activation_s: {args.activation_s}")
    print(f"probe_s: {args.probe_s}")
    print(f"route_propagation_s: {args.propagation_s}")
    print(f"validation_ok: {report.ok}")
    print(f"checks: {len(report.checks)}")
    print(f"cloud_api_calls: {len(calls)}")
    print(f"mutating_calls: {sum(mutating.values())} ({', '.join(f'{k} x{v}' for k, v in sorted(mutating.items()))})")
    print(f"ideal_s: {ideal:.2f}")
    print(f"wall_s: {wall:.2f}")
    print(f"ratio: {wall / ideal:.3f}")


if __name__ == "__main__":
    main()

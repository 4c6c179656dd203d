"""The twin's control endpoints under /_twin/ on the cloud API's port (moto's /moto-api/ idea).

Who calls them: tests (the ``twin_calls()`` fixture), benchmarks, the demo and anyone auditing a
rehearsal. They sit apart from the emulated API, are not signed, and answer plain JSON:
- GET  /_twin/health                 {"ok": true}
- GET  /_twin/calls                  the call log: [{service, region, action, params, mutating, error_code}]
                                      (?since=N skips the first N entries, ?action=X filters)
- DELETE /_twin/calls                clear the call log
- GET  /_twin/world                  the world as JSON (disks with format_count, CVMs with os_install_count)
- POST /_twin/reset                  reload the world file; clusters' Kubernetes APIs stopped
- GET/POST /_twin/faults             {"default": {...}, "actions": {"DescribeClusters": {"throttle_rate": 1}},
                                      "nodes_never_ready": N, "clear": true}
- GET/POST /_twin/timings            {"cluster_create": 0.1, ...}
- GET  /_twin/ssh                    private IP -> SSH address and host key (from the SSH fleet)
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import parse_qsl
from collections.abc import Callable
from typing import Any

from twin.cloud.calls import CallLog
from twin.world.model import ActionFault, Faults, Timings, World

Reply = tuple[int, Any]


class AdminRoutes:
    """The /_twin/ routes over the call log and the current world (``world()``: it changes on reset).

    The HTTP server gets ``handle`` in its constructor (twin/cloud/wire.py); this module knows
    nothing of the server, so the two do not import each other.
    """

    def __init__(self, calls: CallLog, world: Callable[[], World], reset: Callable[[], None] | None = None,
                 ssh_map: Callable[[], dict[str, Any]] | None = None,
                 on_timings: Callable[[Timings], None] | None = None):
        self.calls = calls
        self.world = world
        self.reset = reset
        self.ssh_map = ssh_map
        self.on_timings = on_timings

    def handle(self, method: str, path: str, query: str, body: bytes) -> Reply:
        route = path[len("/_twin/"):].strip("/")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        handler = getattr(self, f"_{method.lower()}_{route}", None)
        if handler is None:
            return 404, {"error": f"no admin route {method} {path}"}
        if query:
            payload = {**dict(parse_qsl(query)), **(payload if isinstance(payload, dict) else {})}
        try:
            return handler(payload)
        except (TypeError, ValueError, KeyError) as e:
            return 400, {"error": str(e)}

    def _get_health(self, _: Any) -> Reply:
        return 200, {"ok": True}

    def _get_calls(self, query: dict[str, Any]) -> Reply:
        """The call log; ``?since=N`` skips the first N entries, ``?action=X`` keeps one action."""
        calls = self.calls.snapshot()[int(query.get("since") or 0):]
        if query.get("action"):
            calls = [c for c in calls if c["action"] == query["action"]]
        return 200, calls

    def _delete_calls(self, _: Any) -> Reply:
        self.calls.clear()
        return 200, {"ok": True}

    def _get_world(self, _: Any) -> Reply:
        world = self.world()
        with world.lock:
            return 200, dump_world(world)

    def _post_reset(self, _: Any) -> Reply:
        if self.reset is None:
            return 501, {"error": "reset is not wired"}
        self.reset()
        return 200, {"ok": True}

    def _get_faults(self, _: Any) -> Reply:
        return 200, dataclasses.asdict(self.world().faults)

    def _post_faults(self, payload: dict[str, Any]) -> Reply:
        world = self.world()
        with world.lock:
            faults: Faults = world.faults
            if "default" in payload:
                faults.default = ActionFault(**payload["default"])
            for name, fault in (payload.get("actions") or {}).items():
                if fault is None:
                    faults.actions.pop(name, None)
                else:
                    faults.actions[name] = ActionFault(**fault)
            if "nodes_never_ready" in payload:
                faults.nodes_never_ready = int(payload["nodes_never_ready"])
            if payload.get("clear"):
                faults.actions.clear()
                faults.default = ActionFault()
                faults.nodes_never_ready = 0
            return 200, dataclasses.asdict(faults)

    def _get_timings(self, _: Any) -> Reply:
        return 200, dataclasses.asdict(self.world().timings)

    def _post_timings(self, payload: dict[str, Any]) -> Reply:
        timings: Timings = self.world().timings
        known = {f.name for f in dataclasses.fields(Timings)}
        unknown = set(payload) - known
        if unknown:
            return 400, {"error": f"unknown timings {sorted(unknown)}; known: {sorted(known)}"}
        for key, value in payload.items():
            setattr(timings, key, float(value))
        if self.on_timings is not None:
            self.on_timings(timings)
        return 200, dataclasses.asdict(timings)

    def _get_ssh(self, _: Any) -> Reply:
        if self.ssh_map is None:
            return 200, {}
        return 200, self.ssh_map()


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "lock"}
    if isinstance(obj, dict):
        return {str(k).lower() if isinstance(k, bool) else str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def dump_world(world: World) -> dict[str, Any]:
    """The world's state as JSON-able dicts (snake_case, the twin's own view, not the wire's)."""
    sections = ("regions", "vpcs", "subnets", "route_tables", "security_groups", "vpn_gateways",
                "vpn_connections", "dc_gateways", "idcs", "key_pairs", "instance_types", "cvms",
                "clusters", "peerings")
    dump = {name: _plain(getattr(world, name)) for name in sections}
    dump.update(versions=list(world.versions), timings=_plain(world.timings), faults=_plain(world.faults),
                postpaid_quota_per_zone=world.postpaid_quota_per_zone, scaling_group_max=world.scaling_group_max)
    return dump

"""The twin's control endpoints under /_twin/ on the cloud API's port (moto's /moto-api/ idea).

Who calls them: tests (the ``twin_calls()`` fixture), benchmarks, the demo and anyone auditing a
rehearsal. They sit apart from the emulated API, are not signed, and answer plain JSON:
- GET  /_twin/health                 {"ok": true}
- GET  /_twin/calls                  the call log: [{service, region, action, params, mutating, error_code}]
                                      (?since=N skips the first N entries, ?action=X filters)
- DELETE /_twin/calls                clear the call log
- GET  /_twin/world                  the world as JSON (disks with format_count, CVMs with os_install_count)
- POST /_twin/reset                  reload the world file; clusters' Kubernetes APIs stopped
- POST /_twin/snapshot               {"name": "x"}: remember the whole twin (twin/snapshot.py); 409 naming
                                      the lifecycle steps still pending when the twin is not quiet
- POST /_twin/restore                {"name": "x"}: the twin as snapshot x was (404 when there is none);
                                      call log and counters cleared, as on reset
- GET/POST /_twin/faults             {"default": {...}, "actions": {"DescribeClusters": {"throttle_rate": 1}},
                                      "nodes_never_ready": N, "clear": true}
- GET/POST /_twin/timings            {"cluster_create": 0.1, ...}
- GET  /_twin/counters               {"cloud_mutating": N, "kube_writes": {cluster: N}, "kube_writes_total": N,
                                      "ssh_host_changes": N}: the boundaries the crash campaign kills at
- GET  /_twin/ssh                    private IP -> SSH address and host key (from the SSH fleet)
- GET/POST /_twin/network            {"same_node_policy_defect": true} (R-KR-4),
                                      {"policy_agent_failing_nodes": ["10.0.1.12"]} (kube-router never Ready there)

Only for a local client (``refusal``): the Host header must name a loopback address (a web page
that rebinds its own DNS name to 127.0.0.1 still sends its own name), and a POST or DELETE must
say ``Content-Type: application/json`` (a page can send a form or text/plain without asking, never
JSON without a CORS pre-flight that this server does not answer): a web page cannot reset a
rehearsal, change its faults or read its call log.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl
from typing import Any

from twin.cloud.calls import CallLog, WriteCounters
from twin.snapshot import SnapshotRefused
from twin.world.model import ActionFault, Faults, Timings, World

Reply = tuple[int, Any]


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _loopback_host(host_header: str) -> bool:
    """Whether a Host header (``name``, ``name:port``, ``[v6]:port``) names this machine's loopback."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(method: str, headers: Mapping[str, str]) -> Reply | None:
    """Why an admin request is refused (status, body), or None: loopback Host, JSON for a change."""
    if not _loopback_host(headers.get("Host") or ""):
        return 403, {"error": "the twin's admin routes answer only a Host header naming a loopback address"}
    if method in ("POST", "DELETE", "PUT", "PATCH"):
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, {"error": "the twin's admin routes take only Content-Type: application/json"}
    return None


class AdminRoutes:
    """The /_twin/ routes over the call log and the current world (``world()``: it changes on reset).

    The HTTP server gets ``handle`` in its constructor (twin/cloud/wire.py); this module knows
    nothing of the server, so the two do not import each other.
    """

    def __init__(self, calls: CallLog, world: Callable[[], World], reset: Callable[[], None] | None = None,
                 snapshot: Callable[[str], None] | None = None, restore: Callable[[str], None] | None = None,
                 ssh_map: Callable[[], dict[str, Any]] | None = None,
                 on_timings: Callable[[Timings], None] | None = None,
                 on_network: Callable[[], None] | None = None, counters: WriteCounters | None = None):
        self.calls = calls
        self.world = world
        self.reset = reset
        self.snapshot = snapshot
        self.restore = restore
        self.ssh_map = ssh_map
        self.on_timings = on_timings
        self.on_network = on_network
        self.counters = counters or WriteCounters()

    def handle(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        refused = refusal(method, headers)  # a web page in the user's browser cannot reset a rehearsal
        if refused:
            return refused
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

    def _get_counters(self, _: Any) -> Reply:
        """Mutating cloud calls, cluster API writes, host-changing SSH commands (issue 15's kill points)."""
        mutating = sum(1 for call in self.calls.snapshot() if call.get("mutating"))
        return 200, {"cloud_mutating": mutating, **self.counters.snapshot()}

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

    def _post_snapshot(self, payload: dict[str, Any]) -> Reply:
        name = _snapshot_name(payload)
        if self.snapshot is None:
            return 501, {"error": "snapshots are not wired"}
        try:
            self.snapshot(name)
        except SnapshotRefused as e:  # a lifecycle step in flight: the caller waits for a quiet twin
            return 409, {"error": f"snapshot {name!r} refused: {e}"}
        return 200, {"ok": True, "name": name}

    def _post_restore(self, payload: dict[str, Any]) -> Reply:
        name = _snapshot_name(payload)
        if self.restore is None:
            return 501, {"error": "snapshots are not wired"}
        try:
            self.restore(name)
        except KeyError:
            return 404, {"error": f"no snapshot named {name!r}: take it first (POST /_twin/snapshot {json.dumps({'name': name})})"}
        return 200, {"ok": True, "name": name}

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

    def _get_network(self, _: Any) -> Reply:
        world = self.world()
        with world.lock:
            return 200, {"same_node_policy_defect": world.same_node_policy_defect,
                         "policy_agent_failing_nodes": list(world.policy_agent_failing_nodes),
                         "outside_hosts": _plain(world.outside_hosts)}

    def _post_network(self, payload: dict[str, Any]) -> Reply:
        """The network knobs at run time: the R-KR-4 defect and the kube-router fault drill nodes."""
        known = {"same_node_policy_defect", "policy_agent_failing_nodes"}
        unknown = set(payload) - known
        if unknown:
            return 400, {"error": f"unknown network knobs {sorted(unknown)}; known: {sorted(known)}"}
        defect = payload.get("same_node_policy_defect")
        nodes = payload.get("policy_agent_failing_nodes")
        if defect is not None and not isinstance(defect, bool):
            return 400, {"error": "same_node_policy_defect must be true or false"}
        if nodes is not None and not (isinstance(nodes, list) and all(isinstance(n, str) for n in nodes)):
            return 400, {"error": "policy_agent_failing_nodes must be a list of node names"}
        world = self.world()
        with world.lock:
            if defect is not None:
                world.same_node_policy_defect = defect
            if nodes is not None:
                world.policy_agent_failing_nodes = list(nodes)
        if self.on_network is not None:
            self.on_network()
        return self._get_network({})

    def _get_ssh(self, _: Any) -> Reply:
        if self.ssh_map is None:
            return 200, {}
        return 200, self.ssh_map()


def _snapshot_name(payload: Any) -> str:
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValueError('body must be {"name": "<snapshot name>"}: a non-empty string names the snapshot')
    return name


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
    sections = ("regions", "vpcs", "subnets", "route_tables", "security_groups", "vpn_gateways", "dc_tunnels",
                "vpn_connections", "dc_gateways", "idcs", "key_pairs", "instance_types", "cvms",
                "clusters", "peerings")
    dump = {name: _plain(getattr(world, name)) for name in sections}
    dump.update(versions=list(world.versions), timings=_plain(world.timings), faults=_plain(world.faults),
                postpaid_quota_per_zone=world.postpaid_quota_per_zone, scaling_group_max=world.scaling_group_max)
    return dump

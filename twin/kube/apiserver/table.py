"""Server-side printing: the ``meta.k8s.io/v1 Table`` that ``kubectl get`` asks for.

Called by handlers.Api when the Accept header carries ``as=Table``. Columns and cell formats follow
the apiserver's printers (pkg/printers/internalversion) for nodes, pods, deployments, namespaces,
services, daemonsets, replicasets, statefulsets, jobs and PDBs; any other kind gets Name and Age,
which is what the apiserver's default table convertor prints. Row objects are
PartialObjectMetadata (or the full object with includeObject=Object), so ``-A`` shows NAMESPACE.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Column = tuple[str, str, int]  # (name, type, priority)


def human_age(timestamp: str | None) -> str:
    """apimachinery's duration.HumanDuration, for the AGE column."""
    if not timestamp:
        return "<unknown>"
    created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _age(obj: Obj) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _condition(obj: Obj, kind: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status")
    return None


def _node_row(obj: Obj) -> list[Any]:
    ready = _condition(obj, "Ready")
    status = "Ready" if ready == "True" else "NotReady" if ready in ("False", "Unknown") else "Unknown"
    if obj.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = obj["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = obj.get("status", {}).get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in obj.get("status", {}).get("addresses") or []}
    return [obj["metadata"]["name"], status, ",".join(roles) or "<none>", _age(obj), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"), info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "<unknown>")]


def _pod_row(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for s in statuses:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [obj["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason, restarts, _age(obj),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            "<none>"]


def _deployment_row(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    return [obj["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _age(obj)]


def _namespace_row(obj: Obj) -> list[Any]:
    return [obj["metadata"]["name"], obj.get("status", {}).get("phase", "Active"), _age(obj)]


def _service_row(obj: Obj) -> list[Any]:
    spec = obj.get("spec", {})
    ports = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or []) or "<none>"
    return [obj["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports, _age(obj)]


def _daemonset_row(obj: Obj) -> list[Any]:
    st = obj.get("status", {})
    return [obj["metadata"]["name"], st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in (obj.get("spec", {}).get("template", {}).get("spec", {}).get("nodeSelector") or {}).items()) or "<none>",
            _age(obj)]


def _replicaset_row(obj: Obj) -> list[Any]:
    st = obj.get("status", {})
    return [obj["metadata"]["name"], obj.get("spec", {}).get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0), _age(obj)]


def _statefulset_row(obj: Obj) -> list[Any]:
    st = obj.get("status", {})
    return [obj["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 0)}", _age(obj)]


def _job_row(obj: Obj) -> list[Any]:
    st, spec = obj.get("status", {}), obj.get("spec", {})
    done = "Complete" if _condition(obj, "Complete") == "True" else "Failed" if _condition(obj, "Failed") == "True" else "Running"
    return [obj["metadata"]["name"], done, f"{st.get('succeeded', 0)}/{spec.get('completions', 1)}", "", _age(obj)]


def _pdb_row(obj: Obj) -> list[Any]:
    spec = obj.get("spec", {})
    return [obj["metadata"]["name"], str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
            obj.get("status", {}).get("disruptionsAllowed", 0), _age(obj)]


def _event_row(obj: Obj) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    return [human_age(last), obj.get("type", ""), obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", obj.get("message", "")]


def _configmap_row(obj: Obj) -> list[Any]:
    return [obj["metadata"]["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj)]


def _serviceaccount_row(obj: Obj) -> list[Any]:
    return [obj["metadata"]["name"], len(obj.get("secrets") or []), _age(obj)]


def _networkpolicy_row(obj: Obj) -> list[Any]:
    selector = (obj.get("spec", {}).get("podSelector") or {}).get("matchLabels") or {}
    return [obj["metadata"]["name"], ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>", _age(obj)]


def _default_row(obj: Obj) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj)]


_S, _I = "string", "integer"
PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    "nodes": ([("Name", _S, 0), ("Status", _S, 0), ("Roles", _S, 0), ("Age", _S, 0), ("Version", _S, 0),
               ("Internal-IP", _S, 1), ("External-IP", _S, 1), ("OS-Image", _S, 1), ("Kernel-Version", _S, 1),
               ("Container-Runtime", _S, 1)], _node_row),
    "pods": ([("Name", _S, 0), ("Ready", _S, 0), ("Status", _S, 0), ("Restarts", _S, 0), ("Age", _S, 0),
              ("IP", _S, 1), ("Node", _S, 1), ("Nominated Node", _S, 1), ("Readiness Gates", _S, 1)], _pod_row),
    "deployments.apps": ([("Name", _S, 0), ("Ready", _S, 0), ("Up-to-date", _I, 0), ("Available", _I, 0), ("Age", _S, 0)],
                         _deployment_row),
    "namespaces": ([("Name", _S, 0), ("Status", _S, 0), ("Age", _S, 0)], _namespace_row),
    "services": ([("Name", _S, 0), ("Type", _S, 0), ("Cluster-IP", _S, 0), ("External-IP", _S, 0), ("Port(s)", _S, 0),
                  ("Age", _S, 0)], _service_row),
    "daemonsets.apps": ([("Name", _S, 0), ("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Up-to-date", _I, 0),
                         ("Available", _I, 0), ("Node Selector", _S, 0), ("Age", _S, 0)], _daemonset_row),
    "replicasets.apps": ([("Name", _S, 0), ("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Age", _S, 0)],
                         _replicaset_row),
    "statefulsets.apps": ([("Name", _S, 0), ("Ready", _S, 0), ("Age", _S, 0)], _statefulset_row),
    "jobs.batch": ([("Name", _S, 0), ("Status", _S, 0), ("Completions", _S, 0), ("Duration", _S, 0), ("Age", _S, 0)], _job_row),
    "poddisruptionbudgets.policy": ([("Name", _S, 0), ("Min Available", _S, 0), ("Max Unavailable", _S, 0),
                                     ("Allowed Disruptions", _I, 0), ("Age", _S, 0)], _pdb_row),
    "events": ([("Last Seen", _S, 0), ("Type", _S, 0), ("Reason", _S, 0), ("Object", _S, 0), ("Message", _S, 0)], _event_row),
    "configmaps": ([("Name", _S, 0), ("Data", _I, 0), ("Age", _S, 0)], _configmap_row),
    "serviceaccounts": ([("Name", _S, 0), ("Secrets", _I, 0), ("Age", _S, 0)], _serviceaccount_row),
    "networkpolicies.networking.k8s.io": ([("Name", _S, 0), ("Pod-Selector", _S, 0), ("Age", _S, 0)], _networkpolicy_row),
}
_DEFAULT = ([("Name", _S, 0), ("Age", _S, 0)], _default_row)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(resource: str, items: list[Obj], resource_version: str, continue_token: str | None, include: str) -> Obj:
    columns, row = PRINTERS.get(resource, _DEFAULT)
    rows = []
    for obj in items:
        if include == "Object":
            embedded = obj
        elif include == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        entry: Obj = {"cells": row(obj)}
        if embedded is not None:
            entry["object"] = embedded
        rows.append(entry)
    meta: Obj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": name, "priority": prio}
            for name, kind, prio in columns
        ],
        "rows": rows,
    }

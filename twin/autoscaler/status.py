"""The cluster autoscaler's voice: its Events (R-AS-7) and its status ConfigMap.

Who calls it: twin/autoscaler/scan.py. The real cluster-autoscaler reports through core/v1 Events
(on the ``cluster-autoscaler-status`` ConfigMap: ScaledUpGroup, ScaleDownEmpty, ScaleDown; on nodes:
ScaleDown, ScaleDownFailed; on pods: TriggeredScaleUp, NotTriggerScaleUp, ScaleDown) and writes a
readable summary into that ConfigMap's ``status`` key. Same names, reasons and message shapes here.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from twin.kube import errors

Obj = dict[str, Any]
STATUS_NAMESPACE = "kube-system"
STATUS_NAME = "cluster-autoscaler-status"
COMPONENT = "cluster-autoscaler"


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(store: Any, involved: Obj, type_: str, reason: str, message: str) -> None:
    meta = involved.get("metadata", {})
    stamp = _stamp()
    store.create("events", {
        "metadata": {"name": f"{meta.get('name', '')}.{secrets.token_hex(8)}",
                     "namespace": meta.get("namespace") or "default"},
        "involvedObject": {"kind": involved.get("kind"), "apiVersion": involved.get("apiVersion", "v1"),
                           "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT, "reportingInstance": COMPONENT,
    })


def status_configmap(store: Any) -> Obj:
    """The ConfigMap the autoscaler's cluster-wide events are about (created on first use)."""
    found = store.try_get("configmaps", STATUS_NAMESPACE, STATUS_NAME)
    if found is not None:
        return {**found, "kind": "ConfigMap", "apiVersion": "v1"}
    try:
        made = store.create("configmaps", {
            "metadata": {"name": STATUS_NAME, "namespace": STATUS_NAMESPACE,
                         "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": _stamp()}},
            "data": {"status": "Cluster-autoscaler status: starting\n"}})
    except errors.AlreadyExists:
        made = store.get("configmaps", STATUS_NAMESPACE, STATUS_NAME)
    return {**made, "kind": "ConfigMap", "apiVersion": "v1"}


def cluster_event(store: Any, type_: str, reason: str, message: str) -> None:
    event(store, status_configmap(store), type_, reason, message)


def write_status(store: Any, text: str) -> None:
    """Replace the ConfigMap's ``status`` when what it says changed (not on every scan)."""
    current = status_configmap(store)
    body = (current.get("data") or {}).get("status", "")
    if body.split("\n", 1)[-1] == text:
        return
    stamp = _stamp()
    annotations = {**(current["metadata"].get("annotations") or {}), "cluster-autoscaler.kubernetes.io/last-updated": stamp}
    updated = {**current, "metadata": {**current["metadata"], "annotations": annotations},
               "data": {"status": f"Cluster-autoscaler status at {stamp}:\n{text}"}}
    try:
        store.update("configmaps", updated, expect_rv=current["metadata"]["resourceVersion"])
    except (errors.Conflict, errors.NotFound):
        return  # someone else wrote it: the next scan writes again


def group_status(name: str, ready: int, registered: int, target: int, low: int, high: int,
                 scale_up: str, candidates: int) -> str:
    return (f"  Name:        {name}\n"
            f"  Health:      Healthy (ready={ready} unready={registered - ready} notStarted=0 longNotStarted=0 "
            f"registered={registered} longUnregistered=0 cloudProviderTarget={target} (minSize={low}, maxSize={high}))\n"
            f"  ScaleUp:     {scale_up} (ready={ready} cloudProviderTarget={target})\n"
            f"  ScaleDown:   {'CandidatesPresent' if candidates else 'NoCandidates'} (candidates={candidates})\n")

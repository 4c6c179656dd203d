"""The controllers' shared informer: one event queue, one cache, one clock thread.

Why: a real cluster's controllers watch the apiserver through informers and act on changed objects
only. Here the Store's ``subscribe`` feeds one queue; a drain on the twin's Clock thread applies each
event to the cache, calls the handlers registered for that resource, then runs the reconcilers of
the keys marked dirty. All controller code runs on that one thread under ``lock``, so the cache and
indexes need no locking of their own, and the work done is O(changed objects).

Controllers write through ``create/update/update_status/delete`` here: the result enters the cache at
once (so the next decision already sees it) and the Store's echo of the same write is ignored as stale.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from twin.clock import Clock
from twin.kube import errors, resources
from twin.kube.controllers import util
from twin.kube.types import KubeTimings

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
Handler = Callable[[Obj | None, Obj | None], None]  # (old, new); new None on delete

DRAIN_BUDGET_S = 0.05  # yield the clock thread to other twin timers this often
DRAIN_DELAY_S = 0.002  # gather the events of a burst of writes into one reconcile pass
_STORE_KEY = {r.plural: r.key for r in resources.RESOURCES}


def store_key(resource: str) -> str:
    """Controllers name resources by plural ("replicasets"); the Store by key ("replicasets.apps")."""
    return _STORE_KEY.get(resource, resource)


def plural(resource: str) -> str:
    return resource.split(".", 1)[0]


class Cache:
    """Objects by resource and key, with the pod indexes the controllers need."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[Key, Obj]] = collections.defaultdict(dict)
        self.by_uid: dict[str, tuple[str, Key]] = {}
        self.pods_by_node: dict[str, set[Key]] = collections.defaultdict(set)
        self.pods_by_owner: dict[str, set[Key]] = collections.defaultdict(set)
        self.pods_by_namespace: dict[str, set[Key]] = collections.defaultdict(set)
        self.deleted_rv: dict[tuple[str, Key], int] = {}
        self.rvs: dict[str, dict[Key, int]] = collections.defaultdict(dict)

    def get(self, resource: str, key: Key) -> Obj | None:
        return self.objects[resource].get(key)

    def all(self, resource: str) -> list[Obj]:
        return list(self.objects[resource].values())

    def owner_of(self, obj: Obj) -> tuple[str, Key] | None:
        """(resource, key) of the object's controlling owner, when the cache holds that owner."""
        owner = util.controller_uid(obj)
        return self.by_uid.get(owner) if owner else None

    def pods(self, keys: set[Key]) -> list[Obj]:
        table = self.objects["pods"]
        return [table[k] for k in keys if k in table]

    def apply(self, resource: str, new: Obj, deleted: bool) -> tuple[Obj | None, Obj | None] | None:
        """Apply one change; None when it is older than what the cache holds (an echo or a stale event)."""
        key = util.key_of(new)
        table = self.objects[resource]
        old = table.get(key)
        rv = util.rv_of(new)
        # Compare with the resourceVersion recorded when the object entered the cache, not the one in
        # its metadata: a stored dict's metadata may be shared with (and rewritten by) a later write.
        if old is not None and self.rvs[resource].get(key, 0) >= rv:
            return None
        if old is None and self.deleted_rv.get((resource, key), 0) >= rv:
            return None
        if old is not None:
            self._unindex(resource, key, old)
        if deleted:
            table.pop(key, None)
            self.rvs[resource].pop(key, None)
            self.deleted_rv[(resource, key)] = rv
            if len(self.deleted_rv) > 200_000:
                self.deleted_rv.clear()
            return old, None
        table[key] = new
        self.rvs[resource][key] = rv
        self._index(resource, key, new)
        return old, new

    def _index(self, resource: str, key: Key, obj: Obj) -> None:
        self.by_uid[util.uid_of(obj)] = (resource, key)
        if resource != "pods":
            return
        node = obj.get("spec", {}).get("nodeName")
        if node:
            self.pods_by_node[node].add(key)
        owner = util.controller_uid(obj)
        if owner:
            self.pods_by_owner[owner].add(key)
        self.pods_by_namespace[key[0]].add(key)

    def _unindex(self, resource: str, key: Key, obj: Obj) -> None:
        self.by_uid.pop(util.uid_of(obj), None)
        if resource != "pods":
            return
        node = obj.get("spec", {}).get("nodeName")
        if node:
            self.pods_by_node[node].discard(key)
        owner = util.controller_uid(obj)
        if owner:
            self.pods_by_owner[owner].discard(key)
            if not self.pods_by_owner[owner]:
                del self.pods_by_owner[owner]
        self.pods_by_namespace[key[0]].discard(key)


def _label(fn: Callable[[], None]) -> str:
    """``NodeLifecycle._kubelet_started`` for a lambda made there: what a refused snapshot names."""
    return "kube " + getattr(fn, "__qualname__", "step").replace(".<locals>.<lambda>", "")


class Runtime:
    """Event queue + cache + dirty-key reconcilers, all driven from the Clock thread."""

    def __init__(self, store: Any, clock: Clock, timings: KubeTimings) -> None:
        self.store = store
        self.clock = clock
        self.timings = timings
        self.cache = Cache()
        self.lock = threading.RLock()
        self._events: collections.deque[tuple[str, str, Obj]] = collections.deque()
        self._drain_scheduled = False
        self._flag_lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = collections.defaultdict(list)
        self._reconcilers: list[tuple[str, Callable[[Any], None]]] = []
        self.dirty: dict[str, set[Any]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.running = False

    # ---- wiring ------------------------------------------------------------------------
    def on(self, resource: str, handler: Handler) -> None:
        self._handlers[resource].append(handler)

    def mark_on(self, resource: str, name: str) -> None:
        """Mark the key of every changed ``resource`` object dirty under ``name`` (its own reconciler)."""
        self.on(resource, lambda old, new: self.mark(name, util.key_of(new or old or {})))

    def reconciler(self, name: str, fn: Callable[[Any], None]) -> None:
        """Register ``fn(item)`` run once per item marked dirty under ``name`` (in registration order)."""
        self._reconcilers.append((name, fn))
        self.dirty[name] = set()

    def mark(self, name: str, item: Any) -> None:
        self.dirty[name].add(item)
        self._schedule_drain()

    def start(self, resources: list[str]) -> None:
        self.running = True
        self._unsubscribe = self.store.subscribe(self._on_store_event)
        with self.lock:
            for resource in resources:
                items, _ = self.store.list(store_key(resource))
                for obj in items:
                    self._dispatch(plural(resource), obj, deleted=False)
            self._run_reconcilers()

    def stop(self) -> None:
        self.running = False
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    # ---- events ------------------------------------------------------------------------
    def _on_store_event(self, event: str, resource: str, obj: Obj) -> None:
        resource = plural(resource)
        if resource in self._handlers:
            self._events.append((event, resource, obj))
            self._schedule_drain()

    def _schedule_drain(self) -> None:
        with self._flag_lock:
            if self._drain_scheduled or not self.running:
                return
            self._drain_scheduled = True
        self.clock.call_later(DRAIN_DELAY_S, self._drain)

    def _drain(self) -> None:
        with self._flag_lock:
            self._drain_scheduled = False
        if not self.running:
            return
        deadline = time.monotonic() + DRAIN_BUDGET_S
        with self.lock:
            while self._events and time.monotonic() < deadline:
                event, resource, obj = self._events.popleft()
                self._dispatch(resource, obj, deleted=event == "DELETED")
            self._run_reconcilers()
        if self._events or any(self.dirty.values()):
            self._schedule_drain()

    def _dispatch(self, resource: str, obj: Obj, deleted: bool) -> None:
        change = self.cache.apply(resource, obj, deleted)
        if change is None:
            return
        for handler in self._handlers[resource]:
            try:
                handler(*change)
            except Exception:  # one broken handler must not stop the informer
                log.exception("controller handler failed for %s %s", resource, util.key_of(obj))

    def _run_reconcilers(self) -> None:
        for name, fn in self._reconcilers:
            items, self.dirty[name] = self.dirty[name], set()
            for item in items:
                try:
                    fn(item)
                except Exception:  # keep reconciling the others; the next event retries this one
                    log.exception("reconciler %s failed for %s", name, item)

    # ---- timers ------------------------------------------------------------------------
    def after(self, delay: float, fn: Callable[[], None], *, periodic: bool = False) -> Any:
        """Run ``fn`` on the clock thread after ``delay`` seconds, under the controllers' lock
        (``periodic``: a heartbeat or retry that re-arms itself, not a lifecycle step; twin/clock.py)."""

        def fire() -> None:
            if not self.running:
                return
            with self.lock:
                fn()
            if any(self.dirty.values()):
                self._schedule_drain()  # coalesced: timers due together share one reconcile pass

        return self.clock.call_later(delay, fire, periodic=periodic, label=_label(fn))

    # ---- writes (reflected in the cache at once) ------------------------------------------
    def _remember(self, resource: str, obj: Obj, deleted: bool = False) -> Obj:
        self._dispatch(plural(resource), obj, deleted)
        return obj

    def create(self, resource: str, obj: Obj) -> Obj | None:
        """Create unless the namespace is terminating (the NamespaceLifecycle admission refuses that)."""
        namespace = obj.get("metadata", {}).get("namespace")
        held = self.cache.get("namespaces", ("", namespace)) if namespace else None
        if held is not None and held["metadata"].get("deletionTimestamp"):
            return None
        try:
            return self._remember(resource, self.store.create(store_key(resource), obj))
        except errors.AlreadyExists:
            return None

    def update(self, resource: str, obj: Obj, expect_rv: str | None = None) -> Obj | None:
        """Compare-and-swap against the version this cache holds (never overwrite a client's newer
        write, e.g. an uncordon); None on Conflict: the newer object's event brings the caller back."""
        if expect_rv is None:
            recorded = self.cache.rvs[plural(resource)].get(util.key_of(obj))
            expect_rv = str(recorded) if recorded else None
        try:
            return self._remember(resource, self.store.update(store_key(resource), obj, expect_rv=expect_rv))
        except (errors.Conflict, errors.NotFound):
            return None

    def update_status(self, resource: str, obj: Obj) -> Obj | None:
        """Write ``obj``'s status onto the stored object (the /status subresource; status is ours)."""
        try:
            return self._remember(resource, self.store.update_status(store_key(resource), obj))
        except errors.NotFound:
            return None

    def delete(self, resource: str, namespace: str, name: str, expect_uid: str | None = None) -> Obj | None:
        try:
            gone = self.store.delete(store_key(resource), namespace or None, name, expect_uid=expect_uid)
        except (errors.NotFound, errors.Conflict):
            return None
        deleted = "deletionTimestamp" not in gone.get("metadata", {}) or not gone["metadata"].get("finalizers")
        return self._remember(resource, gone, deleted=deleted)

    def terminate_pod(self, pod: Obj) -> None:
        """Delete a pod as a controller's DELETE would: graceful when bound (the kubelet removes it)."""
        meta = pod.get("metadata", {})
        if meta.get("deletionTimestamp"):
            return
        if not pod.get("spec", {}).get("nodeName") or util.pod_terminal(pod):
            self.delete("pods", meta.get("namespace", ""), meta.get("name", ""))
            return
        grace = int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        try:
            self._remember("pods", self.store.mark_deleting("pods", meta.get("namespace"), meta["name"], grace))
        except errors.NotFound:
            return

    def event(self, involved: Obj, type_: str, reason: str, message: str, component: str) -> None:
        """A core/v1 Event about ``involved`` (kubectl describe shows it)."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        stamp = util.now()
        self.store.create("events", {  # not cached: no controller reads events back
            "metadata": {"name": f"{meta.get('name', '')}.{util.random_suffix(16)}", "namespace": namespace},
            "involvedObject": {"kind": involved.get("kind"), "apiVersion": involved.get("apiVersion"),
                               "name": meta.get("name"), "namespace": meta.get("namespace"),
                               "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
            "type": type_, "reason": reason, "message": message, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": component}, "reportingComponent": component,
            "reportingInstance": component,
        })

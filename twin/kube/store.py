"""The cluster twin's object store: what etcd plus the apiserver's registry are to a real cluster.

One Store per twin cluster. The API server handlers (twin/kube/apiserver) and the
controllers (twin/kube/controllers) both read and write it; nothing else holds cluster state.

- One global resourceVersion counter (like etcd's revision); uid, creationTimestamp, generation
  (bumped when ``spec`` changes), deletionTimestamp for objects held by finalizers.
- Stored dicts are never mutated after they are stored: every write stores a new dict, so reads
  return the stored dicts themselves (no copies per list; treat them as read-only).
- Indexes: by namespace, and pods by ``spec.nodeName`` (kubelets, drain, the scheduler).
- ``subscribe(fn)`` for in-process informers: ``fn(event, resource, obj)`` with event ADDED,
  MODIFIED or DELETED, delivered in resourceVersion order, outside the store lock, never re-entrantly
  (a write made inside a callback is delivered after that callback returns).
- An event history ring so that a watch resumes from a resourceVersion; older than the ring ->
  410 Gone "Expired".
- Objects are encoded once, when stored, by the ``encode`` function the Store is given (the API
  server's wire encoder, twin/kube/apiserver/wire.py): the store knows nothing of the HTTP layer
  (an import contract in pyproject.toml keeps it so), as etcd knows nothing of kube-apiserver.
"""

from __future__ import annotations

import bisect
import collections
import copy
import datetime
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from twin.kube import errors, resources, selectors, store_table

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
Listener = Callable[[str, str, Obj], None]
Encoder = Callable[[str, Obj], bytes]  # (resource key, object) -> the JSON bytes a list or watch sends

HISTORY_SIZE = 50_000


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finalizers(resource: str, obj: Obj) -> list[str]:
    """What holds an object being deleted: metadata.finalizers, and for namespaces spec.finalizers
    (``kubernetes``, removed by the namespace controller once the namespace is empty)."""
    held = list(obj["metadata"].get("finalizers") or [])
    if resource == "namespaces":
        held += (obj.get("spec") or {}).get("finalizers") or []
    return held


@dataclass(frozen=True)
class Event:
    rv: int
    type: str
    resource: str
    obj: Obj


class _Subscriber:
    __slots__ = ("fn", "after_rv", "active")

    def __init__(self, fn: Listener, after_rv: int):
        self.fn = fn
        self.after_rv = after_rv
        self.active = True


class Store:
    """Thread-safe in-memory object store with Kubernetes semantics (see module docstring)."""

    def __init__(self, encode: Encoder, history_size: int = HISTORY_SIZE) -> None:
        self._encode = encode
        self._lock = threading.RLock()
        self._tables: dict[str, store_table.Table] = collections.defaultdict(store_table.Table)
        self._rv = 0
        self._history: collections.deque[Event] = collections.deque(maxlen=history_size)
        self._history_floor = 0  # events with rv <= floor are no longer in the ring
        self._subscribers: list[_Subscriber] = []
        self._pending: collections.deque[Event] = collections.deque()
        self._delivering = threading.Lock()
        self._logs: dict[tuple[str, str], str] = {}  # (pod uid, container) -> what it printed (pods/log)

    # ---- container logs (what the kubelet's containers printed; read by pods/log) --------------
    def append_log(self, pod_uid: str, container: str, text: str) -> None:
        with self._lock:
            self._logs[(pod_uid, container)] = self._logs.get((pod_uid, container), "") + text

    def log_of(self, pod_uid: str, container: str) -> str:
        with self._lock:
            return self._logs.get((pod_uid, container), "")

    # ---- reads -------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        with self._lock:
            obj = self._tables[resource].objects.get((namespace or "", name))
        if obj is None:
            raise errors.NotFound(resource, name)
        return obj

    def try_get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        with self._lock:
            return self._tables[resource].objects.get((namespace or "", name))

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | Mapping[str, Any] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
    ) -> tuple[list[Obj], str]:
        """(items, resourceVersion): the matching stored dicts, sorted by namespace and name."""
        items, rv, _ = self.list_page(resource, namespace, label_selector, field_selector)
        return items, rv

    def list_page(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | Mapping[str, Any] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        limit: int | None = None,
        start_after: Key | None = None,
    ) -> tuple[list[Obj], str, Key | None]:
        """One page of a list: items after ``start_after`` (a key), at most ``limit``.

        Returns (items, resourceVersion, last key when more items remain else None).
        """
        by_labels = selectors.label_matcher(label_selector)
        by_fields = selectors.field_matcher(field_selector)
        node = selectors.node_name_from_fields(field_selector) if resource == "pods" else None
        with self._lock:
            table = self._tables[resource]
            rv = str(self._rv)
            candidates = self._candidates(table, namespace, node, start_after)
            items: list[Obj] = []
            last: Key | None = None
            for key, obj in candidates:
                if by_labels and not by_labels(obj):
                    continue
                if by_fields and not by_fields(obj):
                    continue
                if limit and len(items) >= limit:
                    return items, rv, last
                items.append(obj)
                last = key
        return items, rv, None

    def _candidates(
        self, table: store_table.Table, namespace: str | None, node: str | None, start_after: Key | None
    ) -> Iterator[tuple[Key, Obj]]:
        if node:
            keys = sorted(k for k in table.by_node.get(node, {}) if not namespace or k[0] == namespace)
            return ((k, table.objects[k]) for k in keys if start_after is None or k > start_after)
        keys = table.keys_sorted()
        if namespace:
            lo = bisect.bisect_left(keys, (namespace, ""))
            hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
        else:
            lo, hi = 0, len(keys)
        if start_after is not None:
            lo = max(lo, bisect.bisect_right(keys, start_after))
        return ((k, table.objects[k]) for k in keys[lo:hi])

    def pods_on_node(self, node_name: str) -> list[Obj]:
        with self._lock:
            return list(self._tables["pods"].by_node.get(node_name, {}).values())

    def encoded(self, resource: str, obj: Obj) -> bytes:
        """The object's JSON bytes: those encoded when it was stored (lists of 30,000 pods stay fast),
        else encoded now (an older version, e.g. a watch event's, or a DELETED object)."""
        meta = obj.get("metadata", {})
        hit = self._tables[resource].encoded.get((meta.get("namespace", ""), meta.get("name", "")))
        if hit is not None and hit[0] is obj:
            return hit[1]
        return self._encode(resource, obj)

    # ---- writes ------------------------------------------------------------------------
    def create(self, resource: str, obj: Obj, *, take: bool = False) -> Obj:
        """Store a new object: sets uid, resourceVersion, creationTimestamp, generation; AlreadyExists.

        Resources with a status subresource get at least ``status: {}``, as the real apiserver
        returns them (watchers read ``.status`` on the first ADDED event).

        ``take=True`` stores ``obj`` itself instead of a copy (bulk seeding: the caller must not
        touch it afterwards).
        """
        info = resources.lookup(resource)
        new = obj if take else copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        if info.has_status:
            new.setdefault("status", {})
        if not info.namespaced:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            meta["namespace"] = "default"
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            table = self._tables[resource]
            if key in table.objects:
                raise errors.AlreadyExists(resource, key[1])
            rv = self._next_rv()
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(rv)
            meta["creationTimestamp"] = now_rfc3339()
            meta.pop("deletionTimestamp", None)
            if "spec" in new:
                meta["generation"] = 1
            table.put(key, new, resource == "pods", self._encode(resource, new))
            self._record(rv, "ADDED", resource, new)
        self._deliver()
        return new

    def update(self, resource: str, obj: Obj, expect_rv: str | None = None) -> Obj:
        """Replace an object; Conflict when ``expect_rv`` is given and stale. Bumps generation on spec change.

        ``expect_rv=None`` writes unconditionally (the object's own resourceVersion is ignored);
        the API server passes the client's resourceVersion here for PUT and PATCH.
        An update that empties the finalizers of an object being deleted removes it (for namespaces
        both metadata.finalizers and spec.finalizers).
        """
        with self._lock:
            result = self._update_locked(resource, copy.deepcopy(obj), expect_rv)
        self._deliver()
        return result

    def _update_locked(self, resource: str, new: Obj, expect_rv: str | None, deleting: bool = False) -> Obj:
        meta = new.setdefault("metadata", {})
        info = resources.lookup(resource)
        key = ((meta.get("namespace") or "default") if info.namespaced else "", meta.get("name", ""))
        table = self._tables[resource]
        old = table.objects.get(key)
        if old is None:
            raise errors.NotFound(resource, key[1])
        if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
            raise errors.Conflict(resource, key[1])
        self._carry_identity(info, old, new, deleting)
        if old.get("spec") != new.get("spec") and "spec" in new:
            meta["generation"] = int(old["metadata"].get("generation", 0)) + 1
        if meta.get("deletionTimestamp") and not _finalizers(resource, new) and not deleting:
            return self._remove_locked(resource, table, key, new)
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        table.put(key, new, resource == "pods", self._encode(resource, new))
        self._record(rv, "MODIFIED", resource, new)
        return new

    def update_status(self, resource: str, obj: Obj, expect_rv: str | None = None) -> Obj:
        """Replace only ``status`` (the /status subresource): spec and metadata stay as stored."""
        meta = obj.get("metadata", {})
        with self._lock:
            current = self.get(resource, meta.get("namespace"), meta.get("name", ""))
            if expect_rv and expect_rv != current["metadata"]["resourceVersion"]:
                raise errors.Conflict(resource, meta.get("name", ""))
            new = {**current, "metadata": dict(current["metadata"]), "status": copy.deepcopy(obj.get("status", {}))}
            result = self._update_locked(resource, new, None)
        self._deliver()
        return result

    def delete(self, resource: str, namespace: str | None, name: str, expect_uid: str | None = None) -> Obj:
        """Remove an object now (or mark it deleting while it has finalizers); NotFound.

        Returns the object as deleted (DELETED event carries it with a new resourceVersion).
        Graceful pod deletion and cascades are the API layer's and controllers' business.
        """
        with self._lock:
            result = self._delete_locked(resource, namespace, name, expect_uid)
        self._deliver()
        return result

    def _delete_locked(self, resource: str, namespace: str | None, name: str, expect_uid: str | None) -> Obj:
        table = self._tables[resource]
        key = (namespace or "", name)
        old = table.objects.get(key)
        if old is None:
            raise errors.NotFound(resource, name)
        if expect_uid and old["metadata"].get("uid") != expect_uid:
            raise errors.Conflict(resource, name, "the UID in the precondition does not match the UID in record")
        if _finalizers(resource, old):
            if old["metadata"].get("deletionTimestamp"):
                return old
            marked = {**old, "metadata": {**old["metadata"], "deletionTimestamp": now_rfc3339(),
                                          "deletionGracePeriodSeconds": 0}}
            return self._update_locked(resource, marked, None, deleting=True)
        return self._remove_locked(resource, table, key, old)

    def mark_deleting(self, resource: str, namespace: str | None, name: str, grace_seconds: int) -> Obj:
        """Set deletionTimestamp + deletionGracePeriodSeconds (graceful pod deletion); idempotent."""
        with self._lock:
            old = self.get(resource, namespace, name)
            if old["metadata"].get("deletionTimestamp"):
                return old
            old = dict(old)
            when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=grace_seconds)
            meta = {**old["metadata"], "deletionTimestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "deletionGracePeriodSeconds": grace_seconds}
            result = self._update_locked(resource, {**old, "metadata": meta}, None, deleting=True)
        self._deliver()
        return result

    def _remove_locked(self, resource: str, table: store_table.Table, key: Key, last: Obj) -> Obj:
        rv = self._next_rv()
        gone = {**last, "metadata": {**last["metadata"], "resourceVersion": str(rv)}}
        table.remove(key, resource == "pods")
        self._record(rv, "DELETED", resource, gone)
        return gone

    @staticmethod
    def _carry_identity(info: resources.Resource, old: Obj, new: Obj, deleting: bool) -> None:
        """Fields a client cannot change on update: uid, creationTimestamp, kind, deletionTimestamp."""
        meta, old_meta = new["metadata"], old["metadata"]
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        carried = ("uid", "creationTimestamp", "generation")
        if not deleting:
            carried += ("deletionTimestamp", "deletionGracePeriodSeconds")
        for field in carried:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if not info.namespaced:
            meta.pop("namespace", None)
        else:
            meta["namespace"] = old_meta.get("namespace", "default")

    # ---- snapshot and restore (POST /_twin/snapshot, /_twin/restore: an etcd backup) ----------
    def dump(self) -> dict[str, Any]:
        """The whole store as it is now; stored objects are never mutated, so a deep copy once here
        keeps the dump independent of later writes (the encoded bytes are immutable already)."""
        with self._lock:
            tables = {name: {key: (copy.deepcopy(obj), encoded) for key, (obj, encoded) in table.encoded.items()}
                      for name, table in self._tables.items() if table.objects}
            return {"tables": tables, "rv": self._rv, "history": list(self._history),
                    "history_floor": self._history_floor, "logs": dict(self._logs)}

    def load(self, dump: dict[str, Any]) -> None:
        """Become the store ``dump`` was taken from (before anyone subscribes: no events are sent)."""
        with self._lock:
            self._tables.clear()
            for name, objects in dump["tables"].items():
                table = self._tables[name]
                for key, (obj, encoded) in objects.items():
                    table.put(key, copy.deepcopy(obj), name == "pods", encoded)
            self._rv, self._history_floor = dump["rv"], dump["history_floor"]
            self._history.clear()
            self._history.extend(dump["history"])
            self._logs = dict(dump["logs"])

    # ---- events ------------------------------------------------------------------------
    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, rv: int, kind: str, resource: str, obj: Obj) -> None:
        event = Event(rv, kind, resource, obj)
        if len(self._history) == self._history.maxlen:
            self._history_floor = self._history[0].rv
        self._history.append(event)
        if self._subscribers:
            self._pending.append(event)

    @property
    def history_floor(self) -> int:
        """Changes after this resourceVersion are still in the event history (watch resume, continue tokens)."""
        return self._history_floor

    @property
    def subscriber_count(self) -> int:
        """Informers and open watches right now (tests wait on it instead of sleeping)."""
        return len(self._subscribers)

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(event, resource, obj)`` for every change from now on; returns unsubscribe."""
        with self._lock:
            sub = _Subscriber(fn, self._rv)
            self._subscribers = [*self._subscribers, sub]
        return lambda: self._unsubscribe(sub)

    def watch_from(self, resource_version: str | None, fn: Listener) -> Callable[[], None]:
        """Replay events after ``resource_version`` to ``fn`` (synchronously), then subscribe.

        ``resource_version`` None or "0" means from now. Raises Gone when the ring no longer
        holds the events after it. ``fn`` must be cheap (e.g. a queue put): it runs under the lock
        during replay.
        """
        with self._lock:
            since = int(resource_version) if resource_version not in (None, "", "0") else self._rv
            if since < self._history_floor:
                raise errors.Gone(f"too old resource version: {since} ({self._history_floor + 1})")
            if since < self._rv:
                for event in self._history:
                    if event.rv > since:
                        fn(event.type, event.resource, event.obj)
            sub = _Subscriber(fn, self._rv)
            self._subscribers = [*self._subscribers, sub]
        return lambda: self._unsubscribe(sub)

    def snapshot_and_subscribe(self, resource: str, namespace: str | None, fn: Listener) -> Callable[[], None]:
        """ADDED for every current object of ``resource`` (in ``namespace``), then every change.

        Atomic: no change falls between the snapshot and the subscription (a watch from "now").
        """
        with self._lock:
            table = self._tables[resource]
            objs = table.by_namespace.get(namespace, {}).values() if namespace else table.objects.values()
            for obj in list(objs):
                fn("ADDED", resource, obj)
            sub = _Subscriber(fn, self._rv)
            self._subscribers = [*self._subscribers, sub]
        return lambda: self._unsubscribe(sub)

    def _unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            sub.active = False
            self._subscribers = [s for s in self._subscribers if s is not sub]

    def _deliver(self) -> None:
        """Deliver pending events in order from whichever thread gets the delivery lock."""
        while self._pending:
            if not self._delivering.acquire(blocking=False):
                return  # another thread (or an outer frame of this one) is delivering them
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            break
                        event = self._pending.popleft()
                        subscribers = self._subscribers
                    for sub in subscribers:
                        if sub.active and event.rv > sub.after_rv:
                            try:
                                sub.fn(event.type, event.resource, event.obj)
                            except Exception:  # one broken informer must not starve the others
                                log.exception("store subscriber failed")
            finally:
                self._delivering.release()

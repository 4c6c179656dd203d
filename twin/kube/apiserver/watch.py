"""Watch streams: ``?watch=true`` as JSON lines in chunked HTTP, with resume and bookmarks.

Called by handlers.Api for list requests with ``watch=true``. Semantics kept from the apiserver:
- resourceVersion unset or "0": synthetic ADDED events for every matching object, then changes;
- resourceVersion N: every change after N from the Store's event history; older than the history ->
  one ERROR event carrying a 410 Expired Status (HTTP 200), which the official client raises as
  ApiException(410);
- allowWatchBookmarks=true: BOOKMARK events carrying only the current resourceVersion, while idle
  and before the stream ends;
- sendInitialEvents=true (streaming lists, KEP-3157, which kubectl 1.37's client-go uses to wait for
  deletions): ADDED for every current object, then a BOOKMARK annotated
  ``k8s.io/initial-events-end: "true"``, then changes;
- timeoutSeconds ends the stream; closing the endpoint (R-CRT-11) ends it too.
With ``Accept: ...;as=Table`` (kubectl get -w) each event's object is a one-row Table.
Filtering by namespace and label/field selectors: an object that starts matching is ADDED, one
that stops matching is DELETED, as the apiserver's watch cache does.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import Any

from twin.kube import errors, resources, selectors
from twin.kube.apiserver import table
from twin.kube.store import Store

BOOKMARK_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 1800.0
_END = object()


def _event_bytes(store: Store, resource: str, kind: str, obj: dict[str, Any]) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (kind.encode(), store.encoded(resource, obj))


class WatchStream:
    """An iterator of event lines for one watch request; ``close()`` unsubscribes."""

    def __init__(self, store: Store, res: resources.Resource, namespace: str | None, query: dict[str, str], closed: Any,
                 as_table: bool = False):
        self._store = store
        self._as_table = as_table
        self._include = query.get("includeObject", "Metadata")
        self._res = res
        self._namespace = namespace
        self._labels = selectors.label_matcher(query.get("labelSelector"))
        self._fields = selectors.field_matcher(query.get("fieldSelector"))
        self._bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self._deadline = time.monotonic() + float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
        self._closed = closed
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._unsubscribe = lambda: None
        self._error: bytes | None = None
        self._visible: set[tuple[str, str]] = set()
        rv = query.get("resourceVersion") or ""
        self._knows_all = rv in ("", "0") or query.get("sendInitialEvents") == "true"
        self._initial_events_end = query.get("sendInitialEvents") == "true"
        try:
            if rv in ("", "0") or self._initial_events_end:
                self._unsubscribe = store.snapshot_and_subscribe(res.key, namespace, self._on_event)
                if self._initial_events_end:
                    self._queue.put(("BOOKMARK", None))  # after the snapshot, before any later change
            else:
                self._unsubscribe = store.watch_from(rv, self._on_event)
        except errors.Gone as gone:
            self._error = json.dumps({"type": "ERROR", "object": gone.to_status()}).encode() + b"\n"

    def _selected(self, obj: dict[str, Any]) -> bool:
        if self._labels and not self._labels(obj):
            return False
        return not (self._fields and not self._fields(obj))

    def _on_event(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        """Queue the event as this watcher sees it: an object that starts matching the selectors is
        ADDED, one that stops matching is DELETED (as the apiserver's watch cache filters)."""
        meta = obj["metadata"]
        if resource != self._res.key or (self._namespace and meta.get("namespace") != self._namespace):
            return
        key = (meta.get("namespace", ""), meta.get("name", ""))
        was_visible = key in self._visible
        selected = self._selected(obj)
        if kind == "DELETED":
            self._visible.discard(key)
            if selected or was_visible:
                self._queue.put((kind, obj))
        elif selected:
            self._visible.add(key)
            # a resumed watch does not know what the client saw before: MODIFIED stays MODIFIED there
            self._queue.put(("ADDED" if kind == "MODIFIED" and not was_visible and self._knows_all else kind, obj))
        elif was_visible:
            self._visible.discard(key)
            self._queue.put(("DELETED", obj))

    def _bookmark(self, initial_events_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": self._store.resource_version}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self._res.kind, "apiVersion": self._res.api_version, "metadata": meta}
        return b'{"type":"BOOKMARK","object":%s}\n' % json.dumps(obj, separators=(",", ":")).encode()

    def __iter__(self) -> Iterator[bytes]:
        if self._error is not None:
            yield self._error
            return
        while not self._closed.is_set():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                kind, obj = self._queue.get(timeout=min(remaining, BOOKMARK_INTERVAL_S))
            except queue.Empty:
                if self._bookmarks:
                    yield self._bookmark()
                continue
            batch = [self._line(kind, obj)]
            while len(batch) < 500:
                try:
                    kind, obj = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(self._line(kind, obj))
            yield b"".join(batch)
        if self._bookmarks and not self._closed.is_set():
            yield self._bookmark()

    def _line(self, kind: str, obj: dict[str, Any] | None) -> bytes:
        if obj is None:  # the end of the initial events of a streaming list (sendInitialEvents)
            return self._bookmark(initial_events_end=True)
        if self._as_table:  # kubectl get -w: each event carries a one-row Table
            rows = table.table(self._res.key, [obj], obj["metadata"].get("resourceVersion", ""), None, self._include)
            return json.dumps({"type": kind, "object": rows}, separators=(",", ":")).encode() + b"\n"
        return _event_bytes(self._store, self._res.key, kind, obj)

    def close(self) -> None:
        self._unsubscribe()

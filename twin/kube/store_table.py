"""The per-resource table of the Store: objects by key, with the indexes lists need.

Used only by twin/kube/store.py (under the Store's lock). Kept apart so that the Store
module holds the semantics (resourceVersion, conflicts, events) and this one the data layout:
objects by (namespace, name), by namespace, pods by ``spec.nodeName``, a sorted key list for
paging (rebuilt lazily after creates and deletes), and each object's JSON bytes, encoded once at
write time (lists of 30,000 pods then only join bytes).
"""

from __future__ import annotations

import collections
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


class Table:
    """The objects of one resource with their indexes."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.by_namespace: dict[str, dict[str, Obj]] = collections.defaultdict(dict)
        self.by_node: dict[str, dict[Key, Obj]] = collections.defaultdict(dict)
        self.sorted_keys: list[Key] | None = None
        self.encoded: dict[Key, tuple[Obj, bytes]] = {}

    def put(self, key: Key, obj: Obj, index_node: bool, encoded: bytes) -> None:
        old = self.objects.get(key)
        if old is None:
            self.sorted_keys = None
        self.objects[key] = obj
        # encoded at write time, as etcd holds serialized objects: lists and watches only join bytes
        self.encoded[key] = (obj, encoded)
        self.by_namespace[key[0]][key[1]] = obj
        if index_node:
            if old is not None:
                self._unindex_node(key, old)
            node = obj.get("spec", {}).get("nodeName")
            if node:
                self.by_node[node][key] = obj

    def _unindex_node(self, key: Key, obj: Obj) -> None:
        node = obj.get("spec", {}).get("nodeName")
        if node and node in self.by_node:
            self.by_node[node].pop(key, None)
            if not self.by_node[node]:
                del self.by_node[node]

    def remove(self, key: Key, index_node: bool) -> None:
        old = self.objects.pop(key)
        self.sorted_keys = None
        self.encoded.pop(key, None)
        names = self.by_namespace[key[0]]
        names.pop(key[1], None)
        if not names:
            del self.by_namespace[key[0]]
        if index_node:
            self._unindex_node(key, old)

    def keys_sorted(self) -> list[Key]:
        if self.sorted_keys is None:
            self.sorted_keys = sorted(self.objects)
        return self.sorted_keys

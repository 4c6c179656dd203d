"""The registry of resources the cluster twin knows: group, version, kind, scope, verbs.

Read by the Store (kind/apiVersion of stored objects, namespaced or not), the controllers, the
discovery handlers (APIResourceList as kubectl expects it) and the REST router (URL -> resource key).
It sits beside the store, not in the HTTP layer (twin/kube/apiserver), so that the store and the
controllers need nothing of the API server. A resource key
is what the Store takes: ``pods`` for the core group, ``deployments.apps`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = field(default=False)

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


_R = Resource
RESOURCES: tuple[Resource, ...] = (
    _R("namespaces", "Namespace", "", "v1", False, ("ns",), ("status",),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch"), has_status=True),
    _R("nodes", "Node", "", "v1", False, ("no",), ("status",), has_status=True),
    _R("pods", "Pod", "", "v1", True, ("po",), ("status", "eviction", "binding", "log"), ("all",),
       has_status=True),
    _R("services", "Service", "", "v1", True, ("svc",), ("status",), ("all",),
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"), has_status=True),
    _R("configmaps", "ConfigMap", "", "v1", True, ("cm",)),
    _R("serviceaccounts", "ServiceAccount", "", "v1", True, ("sa",)),
    _R("events", "Event", "", "v1", True, ("ev",)),
    _R("deployments", "Deployment", "apps", "v1", True, ("deploy",), ("status", "scale"), ("all",), has_status=True),
    _R("replicasets", "ReplicaSet", "apps", "v1", True, ("rs",), ("status", "scale"), ("all",), has_status=True),
    _R("daemonsets", "DaemonSet", "apps", "v1", True, ("ds",), ("status",), ("all",), has_status=True),
    _R("statefulsets", "StatefulSet", "apps", "v1", True, ("sts",), ("status", "scale"), ("all",), has_status=True),
    _R("controllerrevisions", "ControllerRevision", "apps", "v1", True),
    _R("jobs", "Job", "batch", "v1", True, (), ("status",), ("all",), has_status=True),
    _R("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, ("pdb",), ("status",), has_status=True),
    _R("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, ("netpol",)),
    _R("leases", "Lease", "coordination.k8s.io", "v1", True),
    _R("roles", "Role", "rbac.authorization.k8s.io", "v1", True),
    _R("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", True),
    _R("clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False),
    _R("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False),
)

BY_KEY: dict[str, Resource] = {r.key: r for r in RESOURCES}
BY_GROUP_VERSION: dict[str, dict[str, Resource]] = {}
for _res in RESOURCES:
    BY_GROUP_VERSION.setdefault(_res.api_version, {})[_res.plural] = _res
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(key: str) -> Resource:
    """The Resource for a Store key; KeyError names the unknown key."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown resource {key!r}; known: {sorted(BY_KEY)}") from None

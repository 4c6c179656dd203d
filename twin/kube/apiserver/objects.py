"""Admission for the twin's apiserver: names, defaults and the validation the flows can trip over.

Called by handlers.Api on create and update, before the Store. Emulated: generateName, DNS-1123
names (422 Invalid), namespace existence (404) and termination (403), the defaults clients read
back (pod phase Pending and restartPolicy, deployment replicas and strategy, namespace phase and
``kubernetes.io/metadata.name`` label, service clusterIP from the service CIDR), the
selector-must-match-template rule of workload controllers, pod containers required.
Not emulated: full OpenAPI schema validation, admission webhooks, quota, LimitRange.
"""

from __future__ import annotations

import ipaddress
import random
import re
import threading
from typing import Any

from twin.kube import errors, selectors
from twin.kube import resources
from twin.kube.store import Store

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet
_WORKLOADS = ("deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps")
_LABEL_NAMED = ("namespaces", "services")


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))


class Admission:
    """Create/update admission against one Store; allocates service cluster IPs from the service CIDR."""

    def __init__(self, store: Store, service_cidr: str = "10.96.0.0/12"):
        self._store = store
        self._service_hosts = ipaddress.ip_network(service_cidr, strict=False).hosts()
        self._ip_lock = threading.Lock()

    def next_cluster_ip(self) -> str:
        """The next free service IP (IPs taken by services created outside admission are skipped)."""
        used = {s.get("spec", {}).get("clusterIP") for s in self._store.list("services")[0]}
        with self._ip_lock:
            for host in self._service_hosts:
                if str(host) not in used:
                    return str(host)
        raise errors.InternalError("failed to allocate a serviceIP: range is full")

    @property
    def store(self) -> Store:
        return self._store

    def next_node_port(self) -> int:
        """A free port of the default NodePort range 30000-32767."""
        used = {p.get("nodePort") for s in self._store.list("services")[0] for p in s.get("spec", {}).get("ports") or []}
        with self._ip_lock:
            for port in range(30000 + random.randrange(2768), 32768):
                if port not in used:
                    return port
            for port in range(30000, 32768):
                if port not in used:
                    return port
        raise errors.InternalError("failed to allocate a nodePort: range is full")

    def admit_create(self, res: resources.Resource, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        self._check_kind(res, obj)
        if res.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace or body_ns or "default"
            self._check_namespace_open(meta["namespace"])
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.Invalid(res.kind, "", [("metadata.name", "Required value: name or generateName is required")], res.group)
            meta["name"] = generate_name(meta["generateName"])
        self._check_name(res, meta["name"])
        if res.has_status and res.key != "nodes":
            obj.pop("status", None)  # PrepareForCreate: status is the controllers' to write
        _DEFAULTS.get(res.key, _no_defaults)(self, obj)
        if res.has_status:
            obj.setdefault("status", {})  # the real apiserver returns new workloads with ``status: {}``
        self.validate(res, obj)
        return obj

    def validate_update(self, res: resources.Resource, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Immutable fields: workload selectors; a pod's nodeName once set and its containers but images."""
        name = old["metadata"]["name"]
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if res.key in _WORKLOADS and old_spec.get("selector") != new_spec.get("selector"):
            why = f"Invalid value: {new_spec.get('selector')}: field is immutable"
            raise errors.Invalid(res.kind, name, [("spec.selector", why)], res.group)
        if res.key == "pods":
            if old_spec.get("nodeName") and old_spec.get("nodeName") != new_spec.get("nodeName"):
                raise errors.Invalid("Pod", name, [("spec.nodeName", "Forbidden: field is immutable")])
            strip = lambda spec: [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []]  # noqa: E731
            if strip(old_spec) != strip(new_spec):
                why = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, ..."
                raise errors.Invalid("Pod", name, [("spec", why)])

    def _check_kind(self, res: resources.Resource, obj: dict[str, Any]) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != res.api_version:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected API version ({res.api_version})"
            )
        if kind and kind != res.kind:
            raise errors.BadRequest(f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self._store.try_get("namespaces", None, namespace)
        if ns is None:
            raise errors.NotFound("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
            raise errors.Forbidden(
                f'unable to create new content in namespace {namespace} because it is being terminated',
                details={"name": namespace, "kind": "namespaces"},
            )

    @staticmethod
    def _check_name(res: resources.Resource, name: str) -> None:
        pattern = _DNS1123_LABEL if res.key in _LABEL_NAMED else _DNS1123_SUBDOMAIN
        if len(name) > 253 or not pattern.match(name):
            why = (f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                   "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
            raise errors.Invalid(res.kind, name, [("metadata.name", why)], res.group)

    def validate(self, res: resources.Resource, obj: dict[str, Any]) -> None:
        """Rules checked on create and update (422 Invalid with the field path)."""
        name = obj["metadata"].get("name", "")
        spec = obj.get("spec") or {}
        _check_labels(res, name, obj["metadata"].get("labels") or {})
        if res.key == "pods":
            containers = spec.get("containers") or []
            if not containers:
                raise errors.Invalid("Pod", name, [("spec.containers", "Required value")])
            for i, container in enumerate(containers):
                for field in ("name", "image"):
                    if not container.get(field):
                        raise errors.Invalid("Pod", name, [(f"spec.containers[{i}].{field}", "Required value")])
        if res.key in _WORKLOADS:
            selector = spec.get("selector")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not selector:
                raise errors.Invalid(res.kind, name, [("spec.selector", "Required value")], res.group)
            if not selectors.selects(selector, labels):
                why = f"Invalid value: {labels}: `selector` does not match template `labels`"
                raise errors.Invalid(res.kind, name, [("spec.template.metadata.labels", why)], res.group)
        if res.key in ("deployments.apps", "replicasets.apps", "statefulsets.apps"):
            if int(spec.get("replicas", 0)) < 0:
                why = f"Invalid value: {spec['replicas']}: must be greater than or equal to 0"
                raise errors.Invalid(res.kind, name, [("spec.replicas", why)], res.group)


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _check_labels(res: resources.Resource, name: str, labels: dict[str, Any]) -> None:
    for key, value in labels.items():
        prefix, _, label = str(key).rpartition("/")
        if not _LABEL_NAME.match(label) or len(label) > 63 or (prefix and not _DNS1123_SUBDOMAIN.match(prefix)):
            raise errors.Invalid(res.kind, name, [("metadata.labels", f'Invalid value: "{key}": name part must consist of '
                                                   "alphanumeric characters, '-', '_' or '.', and must start and end "
                                                   "with an alphanumeric character")], res.group)
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            raise errors.Invalid(res.kind, name, [("metadata.labels", f'Invalid value: "{value}": a valid label must be an '
                                                   "empty string or consist of alphanumeric characters, '-', '_' or '.'")],
                                 res.group)


def _no_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    return None


def _pod_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    _container_defaults(spec)
    for container in spec.get("containers") or []:
        container.setdefault("imagePullPolicy", "Always" if container.get("image", "").endswith(":latest") else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", _qos_class(spec))


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(lim.get("cpu") and lim.get("memory") and (not req or req == lim) for req, lim in zip(requests, limits))
    return "Guaranteed" if guaranteed else "Burstable"


def _container_defaults(pod_spec: dict[str, Any]) -> None:
    for container in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _template_defaults(spec: dict[str, Any]) -> None:
    template_spec = spec.setdefault("template", {}).setdefault("spec", {})
    _container_defaults(template_spec)
    template_spec.setdefault("restartPolicy", "Always")
    template_spec.setdefault("terminationGracePeriodSeconds", 30)
    template_spec.setdefault("dnsPolicy", "ClusterFirst")
    template_spec.setdefault("schedulerName", "default-scheduler")


def _deployment_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    _template_defaults(spec)


def _replicated_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template_defaults(spec)


def _daemonset_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    _template_defaults(spec)


def _job_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("template", {}).setdefault("spec", {}).setdefault("restartPolicy", "Never")
    _container_defaults(spec["template"]["spec"])


def _namespace_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _service_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        wanted = spec.get("clusterIP")
        if wanted and any(s.get("spec", {}).get("clusterIP") == wanted for s in admission.store.list("services")[0]):
            why = f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: provided IP is already allocated'
            raise errors.Invalid("Service", obj["metadata"]["name"], [("spec.clusterIPs", why)])
        spec["clusterIP"] = wanted or admission.next_cluster_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            port["nodePort"] = admission.next_node_port()
    obj.setdefault("status", {"loadBalancer": {}})


def _pdb_defaults(admission: Admission, obj: dict[str, Any]) -> None:
    obj.setdefault("status", {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})


_DEFAULTS = {
    "pods": _pod_defaults,
    "deployments.apps": _deployment_defaults,
    "replicasets.apps": _replicated_defaults,
    "statefulsets.apps": _replicated_defaults,
    "daemonsets.apps": _daemonset_defaults,
    "jobs.batch": _job_defaults,
    "namespaces": _namespace_defaults,
    "services": _service_defaults,
    "poddisruptionbudgets.policy": _pdb_defaults,
}

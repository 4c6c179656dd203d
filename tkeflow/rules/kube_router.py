"""kube-router as TKE's network policy agent: its manifests, conflicts, and what it starts enforcing.

Who calls it: the kube-router rollout tasks (tasks/kube_router.py) and ``tkeflow plan`` (through the
flow's plan), and the tests. Pure: dicts shaped like the Kubernetes API, no client.

- R-KR-1: firewall only (``--run-router=false --run-firewall=true --run-service-proxy=false``): pod
  networking is the VPC's, the service proxy is kube-proxy's.
- R-KR-2: a DaemonSet ``apps/v1`` in kube-system, host network, privileged, tolerating masters and
  CriticalAddonsOnly, liveness ``GET /healthz`` on 20244, mounting /lib/modules, the CNI config dir
  and a kubeconfig; ``--iptables-sync-period`` and ``--cache-sync-timeout`` from the spec; the RBAC
  current kube-router needs (it reads endpointslices and takes leases); today's API groups only.
The kubeconfig kube-router reads is a ConfigMap that points at the API server by the ``kubernetes``
Service's IP (hostNetwork pods do not resolve cluster DNS) and authenticates with the pod's own
ServiceAccount token file: no credential is written into any object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tkeflow.rules import netpol

NAMESPACE = "kube-system"
NAME = "kube-router"
MANAGED_BY = {"app.kubernetes.io/managed-by": "tkeflow"}
APP_LABELS = {"k8s-app": NAME}
HEALTH_PORT = 20244  # R-KR-2
FIREWALL_ONLY = ("--run-router=false", "--run-firewall=true", "--run-service-proxy=false")  # R-KR-1
CNI_CONF_DIR = "/etc/cni/net.d"
KUBECONFIG_DIR = "/var/lib/kube-router"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Images of network policy agents that must not run beside kube-router (their rules would fight).
#: R-KR-5: the doc's benchmark (1000 services, one policy selecting every pod) lost 10-20% of its QPS
#: with kube-router at 2000-8000 pods; a cluster at or above the lower bound is told so before the rollout.
QPS_COST_PODS = 2000


def qps_cost_note(pods: int) -> tuple[bool, str]:
    """(whether to warn, what to say) about kube-router's throughput cost for a cluster of ``pods`` pods (R-KR-5)."""
    if pods >= QPS_COST_PODS:
        return True, (f"{pods} pods: the TKE guide measured 10-20% fewer requests per second with kube-router at "
                      f"2000-8000 pods; plan the capacity before the rollout")
    return False, f"{pods} pods: below the {QPS_COST_PODS} pods at which the TKE guide measured a 10-20% QPS cost"


OTHER_AGENTS = ("calico/node", "calico-node", "cilium", "weave-npc", "antrea", "kube-router")

_READ = ["get", "list", "watch"]
RBAC_RULES = [  # what kube-router v2 reads and writes
    {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
]


def _meta(name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**APP_LABELS, **MANAGED_BY}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def agent_args(spec: Any) -> list[str]:
    """The container's arguments: firewall only (R-KR-1), the spec's sync settings (R-KR-2), extras."""
    return [*FIREWALL_ONLY, f"--iptables-sync-period={spec.iptables_sync_period}",
            f"--cache-sync-timeout={spec.cache_sync_timeout}", f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig.conf",
            f"--health-port={HEALTH_PORT}", *spec.extra_args]


def kubeconfig_document(apiserver: str) -> str:
    return "\n".join([
        "apiVersion: v1", "kind: Config", "clusters:", "- name: default", "  cluster:",
        f"    certificate-authority: {SA_DIR}/ca.crt", f"    server: {apiserver}", "users:", "- name: kube-router",
        "  user:", f"    tokenFile: {SA_DIR}/token", "contexts:", "- name: default", "  context:",
        "    cluster: default", "    user: kube-router", "current-context: default", ""])


def _container(spec: Any) -> dict[str, Any]:
    return {
        "name": NAME, "image": spec.image, "args": agent_args(spec),
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "securityContext": {"privileged": True},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": HEALTH_PORT}, "initialDelaySeconds": 10,
                          "periodSeconds": 3},
        "resources": {"requests": {"cpu": "250m", "memory": "250Mi"}},
        "volumeMounts": [{"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
                         {"name": "cni-conf-dir", "mountPath": CNI_CONF_DIR},
                         {"name": "kubeconfig", "mountPath": KUBECONFIG_DIR, "readOnly": True}],
    }


def daemonset(spec: Any) -> dict[str, Any]:
    """The R-KR-2 DaemonSet (apps/v1), RollingUpdate within ``spec.max_unavailable``."""
    template_spec = {
        "serviceAccountName": NAME, "hostNetwork": True, "priorityClassName": "system-node-critical",
        "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "containers": [_container(spec)],
        "volumes": [{"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    {"name": "cni-conf-dir", "hostPath": {"path": CNI_CONF_DIR}},
                    {"name": "kubeconfig", "configMap": {"name": f"{NAME}-kubeconfig"}}],
    }
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(NAME),
            "spec": {"selector": {"matchLabels": dict(APP_LABELS)},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": spec.max_unavailable}},
                     "template": {"metadata": {"labels": dict(APP_LABELS)}, "spec": template_spec}}}


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(text: str) -> float:
    """A Go duration (``1s``, ``5m``, ``1h30m``) in seconds: how long one sync period of the agent lasts."""
    matches = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not matches or "".join(a + b for a, b in matches) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(amount) * _GO_UNITS[unit] for amount, unit in matches)


def daemonset_ref() -> dict[str, Any]:
    """Enough of the DaemonSet to read or delete it."""
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME, "namespace": NAMESPACE}}


def manifests(spec: Any, apiserver: str) -> list[dict[str, Any]]:
    """Every object of the rollout, in the order they are applied (R-KR-1/2)."""
    binding_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(NAME, None),
         "rules": RBAC_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": _meta(NAME, None),
         "roleRef": binding_ref, "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(f"{NAME}-kubeconfig"),
         "data": {"kubeconfig.conf": kubeconfig_document(apiserver)}},
        daemonset(spec),
    ]


def differs(desired: Any, current: Any) -> bool:
    """Whether ``current`` lacks something ``desired`` sets (fields the server adds are ignored)."""
    if isinstance(desired, Mapping):
        return not isinstance(current, Mapping) or any(differs(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (not isinstance(current, list) or len(desired) != len(current)
                or any(differs(d, c) for d, c in zip(desired, current, strict=True)))
    return desired != current


def container_args(daemonset_obj: Mapping[str, Any]) -> list[str]:
    containers = (((daemonset_obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(a) for c in containers for a in (c.get("command") or []) + (c.get("args") or [])]


def images(daemonset_obj: Mapping[str, Any]) -> list[str]:
    containers = (((daemonset_obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(c.get("image", "")) for c in containers]


def is_ours(daemonset_obj: Mapping[str, Any]) -> bool:
    meta = daemonset_obj.get("metadata") or {}
    return meta.get("namespace") == NAMESPACE and meta.get("name") == NAME


def conflicts(daemonsets: Iterable[Mapping[str, Any]]) -> list[str]:
    """Other network policy agents (R-KR-1): another agent, or kube-router that is not firewall-only."""
    found = []
    for ds in daemonsets:
        meta = ds.get("metadata") or {}
        where = f"daemonset {meta.get('namespace')}/{meta.get('name')}"
        agent_images = [i for i in images(ds) if any(a in i for a in OTHER_AGENTS)]
        if not agent_images:
            continue
        if is_ours(ds):
            missing = [f for f in FIREWALL_ONLY if f not in container_args(ds)]
            if missing:
                found.append(f"{where} runs kube-router with other flags (missing {' '.join(missing)})")
        else:
            found.append(f"{where} runs another policy agent ({', '.join(agent_images)})")
    return found


def enforced_policies(policies: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
                      namespaces: Iterable[Mapping[str, Any]], skip_label: str) -> list[dict[str, Any]]:
    """Every NetworkPolicy with the pods it selects: what an agent starts enforcing (namespaces labelled
    ``skip_label``, the verification's own, are left out)."""
    skipped = {(n.get("metadata") or {}).get("name") for n in namespaces
               if skip_label in ((n.get("metadata") or {}).get("labels") or {})}
    pods = list(pods)
    out = []
    for policy in policies:
        meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
        if meta.get("namespace") in skipped:
            continue
        selected = sorted(p["metadata"]["name"] for p in pods if p["metadata"].get("namespace") == meta.get("namespace")
                          and not (p.get("spec") or {}).get("hostNetwork")
                          and netpol.selects(spec.get("podSelector"), p["metadata"].get("labels") or {}))
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
        out.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "types": ",".join(types),
                    "pods": selected})
    return out

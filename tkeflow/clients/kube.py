"""Kubernetes client for the flows: APIs from a kubeconfig string, errors wrapped, cordon and evict.

Who calls it: tasks/cloud.py ``kube_for(cluster_id, region)`` builds a ``Kube`` from the kubeconfig
in the cluster's Prefect Secret block; tasks use its bundled APIs (``kube.core``, ``kube.apps``,
``kube.batch``, ``kube.policy``, ``kube.networking``, ``kube.rbac``), the list helpers, cordon/uncordon/evict and the
watch-based waits (tkeflow/clients/kube_waits.py, mixed in).

Why the APIs are wrapped: every call through ``kube.core.<method>`` raises tkeflow errors, never
kubernetes/urllib3 ones, so tasks retry by type (tkeflow/clients/errors.py has the table; 409
Conflict is a retryable ConflictError, 409 AlreadyExists a permanent AlreadyExistsError).
The kubeconfig is never written to disk or logged (tkeflow/clients/kube_config.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client import exceptions as kube_exceptions

from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients import kube_config
from tkeflow.clients.kube_api import THIRD_PARTY_ERRORS, GuardedApi, guard, selectors, translate
from tkeflow.clients.kube_waits import WaitsMixin
from tkeflow.rules import upgrade as upgrade_rules

# R-NODE-1: a resumed flow uncordons only its own cordons. The mark is the one the upgrade's resume
# logic reads (tkeflow/rules/upgrade.py), defined there once.
CORDONED_BY_ANNOTATION = upgrade_rules.CORDONED_BY_ANNOTATION
CORDONED_BY_VALUE = upgrade_rules.CORDONED_BY_VALUE
DEFAULT_REQUEST_TIMEOUT_S = 30.0
LIST_PAGE_SIZE = 500  # kubectl's default chunk size
MERGE_PATCH = "application/merge-patch+json"  # the client defaults to json-patch even for a dict body


def is_cordoned_by_tkeflow(node: Any) -> bool:
    annotations = (node.metadata.annotations or {}) if node.metadata else {}
    return bool(node.spec and node.spec.unschedulable) and annotations.get(CORDONED_BY_ANNOTATION) == CORDONED_BY_VALUE


class Kube(WaitsMixin):
    """One cluster's Kubernetes API. Use as a context manager, or call ``close()``."""

    def __init__(self, kubeconfig: str, *, context: str | None = None, request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S):
        self._configuration, self._memfiles = kube_config.configuration_from_kubeconfig(kubeconfig, context)
        self.request_timeout_s = request_timeout_s
        self.api_client = client.ApiClient(self._configuration)
        self.core = GuardedApi(client.CoreV1Api(self.api_client), "core/v1", request_timeout_s)
        self.apps = GuardedApi(client.AppsV1Api(self.api_client), "apps/v1", request_timeout_s)
        self.policy = GuardedApi(client.PolicyV1Api(self.api_client), "policy/v1", request_timeout_s)
        self.batch = GuardedApi(client.BatchV1Api(self.api_client), "batch/v1", request_timeout_s)
        self.networking = GuardedApi(client.NetworkingV1Api(self.api_client), "networking.k8s.io/v1", request_timeout_s)
        self.rbac = GuardedApi(client.RbacAuthorizationV1Api(self.api_client), "rbac.authorization.k8s.io/v1", request_timeout_s)
        self.version_api = GuardedApi(client.VersionApi(self.api_client), "version", request_timeout_s)

    @property
    def server_url(self) -> str:
        return str(self._configuration.host)

    def __repr__(self) -> str:  # the server only: never the token
        return f"Kube(server={self.server_url!r})"

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.api_client.close()
        self._memfiles.close()

    def to_dict(self, obj: Any) -> Any:
        """A kubernetes model object as the API's JSON dict (camelCase keys)."""
        return self.api_client.sanitize_for_serialization(obj)

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. ``v1.30.0``."""
        return str(self.version_api.get_code().git_version)

    # --- lists (chunked with limit/continue, like kubectl) -------------------------------------

    def list_all(self, list_fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        """Every item of a list call, page by page; errors are tkeflow's."""
        items: list[Any] = []
        token: str | None = None
        fn = guard(list_fn, self.request_timeout_s)
        while True:
            page = fn(limit=LIST_PAGE_SIZE, _continue=token, **kwargs) if token else fn(limit=LIST_PAGE_SIZE, **kwargs)
            items += page.items or []
            token = page.metadata._continue if page.metadata else None
            if not token:
                return items

    def list_nodes(self, label_selector: str | None = None) -> list[client.V1Node]:
        return self.list_all(self.core.list_node, **selectors(label_selector))

    def list_pods(self, namespace: str | None = None, *, label_selector: str | None = None, field_selector: str | None = None) -> list[client.V1Pod]:
        chosen = selectors(label_selector, field_selector)
        if namespace:
            return self.list_all(self.core.list_namespaced_pod, namespace=namespace, **chosen)
        return self.list_all(self.core.list_pod_for_all_namespaces, **chosen)

    def pods_on_node(self, node_name: str) -> list[client.V1Pod]:
        return self.list_pods(field_selector=f"spec.nodeName={node_name}")

    def list_deployments(self, namespace: str | None = None, *, label_selector: str | None = None) -> list[client.V1Deployment]:
        if namespace:
            return self.list_all(self.apps.list_namespaced_deployment, namespace=namespace, **selectors(label_selector))
        return self.list_all(self.apps.list_deployment_for_all_namespaces, **selectors(label_selector))

    def list_daemonsets(self, namespace: str | None = None, *, label_selector: str | None = None) -> list[client.V1DaemonSet]:
        if namespace:
            return self.list_all(self.apps.list_namespaced_daemon_set, namespace=namespace, **selectors(label_selector))
        return self.list_all(self.apps.list_daemon_set_for_all_namespaces, **selectors(label_selector))

    def list_namespaces(self, label_selector: str | None = None) -> list[client.V1Namespace]:
        return self.list_all(self.core.list_namespace, **selectors(label_selector))

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> bool:
        """Create the namespace unless it exists (R-CRT-12); True when this call created it."""
        try:
            self.core.read_namespace(name)
            return False
        except errors.NotFoundError:
            pass
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or None))
        try:
            self.core.create_namespace(body)
        except client_errors.AlreadyExistsError:  # created meanwhile: the goal holds
            return False
        return True

    # --- nodes: cordon, uncordon (R-NODE-1), eviction (R-NODE-2) -------------------------------

    def get_node(self, name: str) -> client.V1Node:
        return self.core.read_node(name)

    def cordon(self, name: str) -> bool:
        """Mark the node unschedulable; True when tkeflow cordoned it (now or in an earlier run).

        A node someone else cordoned is left as it is, without our annotation, so that a resumed
        flow's ``uncordon(..., only_if_ours=True)`` never undoes a human's cordon.
        """
        node = self.get_node(name)
        if node.spec and node.spec.unschedulable:
            return is_cordoned_by_tkeflow(node)
        patch = {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: CORDONED_BY_VALUE}}, "spec": {"unschedulable": True}}
        self.core.patch_node(name, patch, _content_type=MERGE_PATCH)
        return True

    def uncordon(self, name: str, *, only_if_ours: bool = False) -> bool:
        """Make the node schedulable again and drop our annotation; True when it was cordoned."""
        node = self.get_node(name)
        if not (node.spec and node.spec.unschedulable):
            return False
        if only_if_ours and not is_cordoned_by_tkeflow(node):
            return False
        patch = {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}, "spec": {"unschedulable": None}}
        self.core.patch_node(name, patch, _content_type=MERGE_PATCH)
        return True

    def evict_pod(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> bool:
        """Evict through policy/v1 Eviction (PDBs are honoured); False when the pod is already gone.

        Raises PdbBlocked (transient) when a PodDisruptionBudget refuses the eviction now (HTTP 429),
        with the API server's message naming the budget.
        """
        delete_options = client.V1DeleteOptions(grace_period_seconds=grace_period_s) if grace_period_s is not None else None
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace), delete_options=delete_options)
        try:
            self.core.raw.create_namespaced_pod_eviction(name, namespace, body, _request_timeout=self.request_timeout_s)
        except kube_exceptions.ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 429:
                raise client_errors.from_eviction_refused(exc.reason, exc.body, pod=f"{namespace}/{name}") from exc
            raise translate(exc, f"evict pod {namespace}/{name}") from exc
        except THIRD_PARTY_ERRORS as exc:
            raise translate(exc, f"evict pod {namespace}/{name}") from exc
        return True

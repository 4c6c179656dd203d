"""KubeCluster: one twin TKE cluster's Kubernetes API, composed of Store + API server + controllers.

The cloud twin creates one per cluster (CreateCluster) and drives it: nodes join and leave
(AddExistedInstances, node pools), go down and come back (UpgradeClusterInstances), the endpoint
opens and closes (R-CRT-11), the master is upgraded. Flows never see this object: they get the
kubeconfig (DescribeClusterKubeconfig) and talk HTTPS + bearer token like to a real TKE cluster.
Seeded like a fresh cluster: namespaces default, kube-system, kube-public, kube-node-lease, the
``kubernetes`` service and the ``default`` service accounts.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Callable
from typing import Any

import yaml

from twin.clock import Clock
from twin.kube import errors, resources, tls
from twin.kube.apiserver import wire
from twin.kube.apiserver.deletion import Deleter
from twin.kube.apiserver.eviction import Evictor
from twin.kube.apiserver.handlers import Api
from twin.kube.apiserver.objects import Admission
from twin.kube.apiserver.server import ApiServer, Request, Response
from twin.kube.controllers import Controllers
from twin.kube.store import HISTORY_SIZE, Store
from twin.kube.types import KubeTimings, NodeSpec

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeCluster:
    """The facade of the contracts (see module docstring); thread-safe, start() before use."""

    def __init__(self, cluster_id: str, name: str = "", version: str = "1.30.0",
                 container_cidr: str = "172.20.0.0/16", service_cidr: str = "172.21.0.0/20",
                 clock: Clock | None = None, timings: KubeTimings | None = None, network: Any = None,
                 history_size: int = HISTORY_SIZE, on_write: Callable[[str], None] | None = None,
                 state: dict[str, Any] | None = None):
        """``state``: a ``state()`` taken earlier (twin/snapshot.py): the same CA, token, port and
        objects, the kubelets' nodes and pod IPs; its Running pods keep running (not restarted)."""
        self.cluster_id = cluster_id
        self._on_write = on_write  # the twin's WriteCounters (GET /_twin/counters, the crash campaign)
        self.name = name or cluster_id
        self.version = version
        self.container_cidr = container_cidr
        self.service_cidr = service_cidr
        self._own_clock = clock is None
        self.clock = clock or Clock()
        self.timings = timings or KubeTimings()
        self.network = network
        self.store = Store(wire.encode, history_size)
        self.token = state["token"] if state else secrets.token_urlsafe(32)
        self._tls = state["tls"] if state else tls.generate(cluster_id)
        self.ca_pem = self._tls.ca_pem.decode()
        self._admission = Admission(self.store, service_cidr)
        self._deleter = Deleter(self.store)
        api = Api(self.store, self._admission, self._deleter, Evictor(self.store, self._deleter),
                  git_version=lambda: self.git_version, server_address=lambda: f"127.0.0.1:{self._server.port}")
        self._server = ApiServer(self._tls.server_context(), self.token, self._counted(api.dispatch))
        self.controllers = Controllers(self.store, self.clock, self.timings, network, cluster_id=cluster_id,
                                       container_cidr=container_cidr, service_cidr=service_cidr, version=version)
        self._started = False
        self._seeded = False
        if state:
            self._server.port = state["port"]  # the kubeconfig handed out before names this port
            self.store.load(state["store"])
            self.controllers.load(state["controllers"])
            self._seeded = True
        self._unsubscribe_namespaces = self.store.subscribe(self._on_namespace)

    def state(self) -> dict[str, Any]:
        """Everything ``KubeCluster(..., state=)`` needs to be this cluster again (POST /_twin/snapshot)."""
        return {"token": self.token, "tls": self._tls, "port": self._server.port, "version": self.version,
                "endpoint_open": self.endpoint_open, "store": self.store.dump(),
                "controllers": self.controllers.dump()}

    def _counted(self, dispatch: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """``dispatch`` that reports each successful write (not a read, not a refused write) to on_write."""
        if self._on_write is None:
            return dispatch
        on_write = self._on_write

        def counted(request: Request) -> Response:
            response = dispatch(request)
            if request.method in _WRITES and response.status < 300:
                on_write(self.cluster_id)
            return response

        return counted

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> KubeCluster:
        if self._started:
            return self
        if not self._seeded:
            self._seed()
            self._seeded = True
        self.controllers.start()
        self._server.open()
        self._started = True
        return self

    def stop(self) -> None:
        self._server.release()
        self.controllers.stop()
        self._unsubscribe_namespaces()
        if self._own_clock:
            self.clock.stop()
        self._started = False

    def _seed(self) -> None:
        for namespace in SEED_NAMESPACES:
            self.create("namespaces", {"metadata": {"name": namespace}})
        first_ip = str(next(ipaddress.ip_network(self.service_cidr, strict=False).hosts()))
        self.create("services", {
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]},
        })

    def _on_namespace(self, event: str, resource: str, obj: dict[str, Any]) -> None:
        """What the serviceaccount and root-CA publisher controllers add to every new namespace:
        the ``default`` ServiceAccount (pods run as it) and the ``kube-root-ca.crt`` ConfigMap."""
        if resource != "namespaces" or event != "ADDED":
            return
        namespace = obj["metadata"]["name"]
        defaults = [("serviceaccounts", {"metadata": {"name": "default", "namespace": namespace}}),
                    ("configmaps", {"metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                                    "data": {"ca.crt": self.ca_pem}})]
        for kind, default in defaults:
            try:
                self.store.create(kind, default)
            except errors.AlreadyExists:
                continue

    def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create through admission (defaults, validation) without HTTP: for seeding and the cloud twin."""
        res = resources.lookup(resource)
        admitted = self._admission.admit_create(res, obj.get("metadata", {}).get("namespace"), obj)
        return self.store.create(resource, admitted)

    # ---- endpoint ----------------------------------------------------------------------
    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self._server.port}"

    @property
    def endpoint_open(self) -> bool:
        return self._server.is_open

    def set_endpoint_open(self, is_open: bool) -> None:
        """R-CRT-11: closed -> connections refused (the port kept, not listening); reopened on the same port."""
        if is_open:
            self._server.open()
        else:
            self._server.close()

    @property
    def git_version(self) -> str:
        return self.version if self.version.startswith("v") else f"v{self.version}"

    def set_master_version(self, version: str) -> None:
        """The master upgrade is done: /version reports ``version`` from now on."""
        self.version = version
        self.controllers.version = version

    def kubeconfig(self) -> str:
        """The kubeconfig DescribeClusterKubeconfig returns: HTTPS server, CA data, bearer token."""
        context = f"{self.cluster_id}-context-default"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.cluster_id, "cluster": {
                "server": self.server_url,
                "certificate-authority-data": base64.b64encode(self.ca_pem.encode()).decode(),
            }}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": self.cluster_id, "user": "admin"}}],
            "current-context": context,
            "preferences": {},
        }
        return yaml.safe_dump(config, sort_keys=False)

    # ---- nodes (delegated to the controllers) ------------------------------------------
    def add_node(self, spec: NodeSpec) -> None:
        self.controllers.add_node(spec)

    def remove_node(self, name: str) -> None:
        self.controllers.remove_node(name)

    def node_down(self, name: str) -> None:
        self.controllers.node_down(name)

    def node_up(self, name: str, version: str | None = None) -> None:
        """The node's kubelet is back (at ``version``, default the master's), NotReady then Ready."""
        self.controllers.node_up(name, version or self.version)

    def delete_namespace(self, name: str) -> dict[str, Any]:
        """As DELETE /api/v1/namespaces/<name> (R-CRT-12: protected namespaces raise Forbidden)."""
        return self._deleter.terminate_namespace(name)

    def nodes(self) -> list[dict[str, Any]]:
        return self.store.list("nodes")[0]

    def __repr__(self) -> str:
        return f"KubeCluster({self.cluster_id!r}, {self.server_url!r})"


__all__ = ["KubeCluster", "KubeTimings", "NodeSpec", "errors"]

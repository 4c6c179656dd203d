"""Where tasks get their clients: the Tencent Cloud API per region, and a cluster's Kubernetes API.

Credentials come from the SDK's environment variables (TENCENTCLOUD_SECRET_ID/KEY) or, on a worker
that has none, from the Prefect Secret blocks ``tencentcloud-secret-id`` / ``tencentcloud-secret-key``.
A cluster's kubeconfig lives in the Secret block ``kubeconfig-<cluster-id>`` (written by the
create-cluster flow or fetched on first use), never in a result, a log or a file.

A task that needs a cluster takes a ``ClusterTarget`` as its first argument and reaches its
Kubernetes API with ``with cluster_kube(target) as kube:``. Inside ``kube_session()`` (which
tasks/procedure.py's ``Run`` opens for the whole flow run) that is the run's one client per cluster,
shared by every task of the run, closed when the run ends; outside one (a task alone in a test) it
is a client of its own, closed at the end of the ``with``. No module-global cache.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound

from tasks.cluster_request import MANAGED_TAG
from tkeflow.clients import tencent
from tkeflow.clients.kube import Kube
from tkeflow.errors import NotFoundError, PermanentError

SECRET_ID_BLOCK = "tencentcloud-secret-id"
SECRET_KEY_BLOCK = "tencentcloud-secret-key"


def _secret_value(block_name: str) -> str | None:
    try:
        return str(Secret.load(block_name).get())
    except ValueError:  # Prefect raises ValueError when no block of that name exists
        return None


def tencent_cloud(region: str) -> tencent.TencentCloud:
    """The run's Tencent Cloud client for a region (shared, rate-limited, errors typed)."""
    if os.environ.get(tencent.SECRET_ID_ENV) and os.environ.get(tencent.SECRET_KEY_ENV):
        return tencent.client_for(region)
    secret_id, secret_key = _secret_value(SECRET_ID_BLOCK), _secret_value(SECRET_KEY_BLOCK)
    if not (secret_id and secret_key):
        raise PermanentError(
            "no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or create "
            f"the Prefect Secret blocks {SECRET_ID_BLOCK} and {SECRET_KEY_BLOCK}",
            code="AuthFailure.NoCredentials",
        )
    return tencent.client_for(region, secret_id=secret_id, secret_key=secret_key)


def read_secret(block_name: str) -> str:
    """A Prefect Secret block's value, to go straight into an API call (R-CRT-9: never logged or returned)."""
    value = _secret_value(block_name)
    if value is None:
        raise PermanentError(f"no Prefect Secret block {block_name}: create it, or name another one in the spec",
                             code="SecretNotFound")
    return value


def secret_exists(block_name: str) -> bool:
    """Whether a Prefect Secret block exists (its value is read, never returned or logged)."""
    return _secret_value(block_name) is not None


def kubeconfig_block_name(cluster_id: str) -> str:
    return f"kubeconfig-{cluster_id}"


def save_kubeconfig(cluster_id: str, kubeconfig: str) -> bool:
    """Keep a cluster's kubeconfig in its Secret block; returns True when the block changed."""
    name = kubeconfig_block_name(cluster_id)
    if _secret_value(name) == kubeconfig:
        return False
    try:
        Secret(value=kubeconfig).save(name, overwrite=True)
    except ObjectNotFound:
        # A fresh Prefect server makes its encryption key with the first secret block; two runs saving their
        # first secrets at once (a fleet's children) both make one, the loser's insert is answered 409 "already
        # exists", and save() then finds no block of that name. The key exists now: the same save succeeds.
        Secret(value=kubeconfig).save(name, overwrite=True)
    return True


def load_kubeconfig(cluster_id: str, region: str, extranet: bool = True) -> str:
    """The cluster's kubeconfig from its Secret block, fetched from the API (and kept) when absent."""
    stored = _secret_value(kubeconfig_block_name(cluster_id))
    if stored:
        return stored
    fetched = fetch_kubeconfig(tencent_cloud(region), cluster_id, extranet)
    save_kubeconfig(cluster_id, fetched)
    return fetched


def fetch_kubeconfig(cloud: tencent.TencentCloud, cluster_id: str, extranet: bool) -> str:
    """DescribeClusterKubeconfig: the kubeconfig of the public (extranet) or private endpoint (R-CRT-11)."""
    fetched = cloud.call("tke", "DescribeClusterKubeconfig", {"ClusterId": cluster_id, "IsExtranet": extranet})
    if not fetched.get("Kubeconfig"):
        raise NotFoundError(f"cluster {cluster_id} returned no kubeconfig: open its endpoint first (R-CRT-11)")
    return str(fetched["Kubeconfig"])


def cluster_by_id_or_name(cloud: tencent.TencentCloud, cluster_id: str | None, cluster_name: str | None, *,
                          destructive: bool = True) -> dict[str, Any]:
    """The cluster a spec names by ID or by exact name, in one DescribeClusters call (a name must match one).

    For a flow that changes the cluster (``destructive``), a cluster found by name must carry the
    tkeflow tag (issue 14 item 2): a name is easily shared with a cluster someone else runs, so acting
    on one tkeflow did not create takes its ID, given on purpose.
    """
    if cluster_id:
        by_id = cloud.describe_clusters([cluster_id])
        if not by_id:
            raise NotFoundError(f"cluster {cluster_id} does not exist in {cloud.region}: fix spec.cluster_id")
        return by_id[0]
    name = cluster_name or ""
    found: dict[str, Any] | None = cloud.find_cluster_by_name(name, tags=dict([MANAGED_TAG]) if destructive else None)
    if found:
        return found
    if destructive and cloud.find_cluster_by_name(name):
        raise PermanentError(
            f"the cluster named {name!r} in {cloud.region} was not created by tkeflow (no tag "
            f"{MANAGED_TAG[0]}={MANAGED_TAG[1]}): a flow that changes a cluster finds it by name only when "
            "tkeflow manages it; give spec.cluster_id to act on it", code="ClusterNotManaged")
    raise NotFoundError(
        f"no cluster named {name!r} in {cloud.region}: create it first (kind Cluster) or give spec.cluster_id"
    )


def kube_for(cluster_id: str, region: str) -> Kube:
    """A Kubernetes client for the cluster, from the kubeconfig kept in its Secret block.

    Use as a context manager: ``with kube_for(cluster_id, region) as kube: ...``.
    """
    return Kube(load_kubeconfig(cluster_id, region))


@dataclass(frozen=True)
class ClusterTarget:
    """The cluster a task works on: the first argument of every task that needs one."""

    region: str
    cluster_id: str

    def __str__(self) -> str:
        return self.cluster_id


class KubeSession:
    """The Kubernetes clients of one flow run: one per cluster, created on first use, closed at the end."""

    def __init__(self) -> None:
        self._clients: dict[ClusterTarget, Kube] = {}
        self._lock = threading.Lock()

    def client(self, target: ClusterTarget) -> Kube:
        with self._lock:  # tasks of one run ask from several threads at once: build each client once
            found = self._clients.get(target)
            if found is None:
                found = self._clients[target] = kube_for(target.cluster_id, target.region)
            return found

    def prefetch(self, target: ClusterTarget) -> None:
        """Build the target's client in the background while the run does other things (waits for its
        lock, reads the cloud): the kubeconfig's fetch and the Kubernetes client's import and first
        connection take seconds, paid once per run, so per cluster of a fleet. A failure here is not
        reported: the first task that needs the client builds it again and raises it then."""

        def build() -> None:
            with contextlib.suppress(Exception):  # reported by the task that needs the client
                self.client(target)

        context = contextvars.copy_context()  # the run's Prefect settings (its server), as a task thread has them
        threading.Thread(target=context.run, args=(build,), name=f"kube-prefetch-{target.cluster_id}",
                         daemon=True).start()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


# Set by kube_session() in the flow; Prefect's task runners copy the context into every task's thread.
_session: ContextVar[KubeSession | None] = ContextVar("tkeflow_kube_session", default=None)


@contextlib.contextmanager
def kube_session() -> Iterator[KubeSession]:
    """One Kubernetes client per cluster for everything run inside (a flow run), closed on exit."""
    session = KubeSession()
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)
        session.close()


def prefetch_kube(target: ClusterTarget) -> None:
    """Start building the run's client for the target in the background (KubeSession.prefetch); no-op outside a run."""
    session = _session.get()
    if session is not None:
        session.prefetch(target)


def session_kube(target: ClusterTarget) -> Kube:
    """The run's shared client for the target, inside kube_session() (every flow's Run opens one).

    For tasks that always run within a flow (the upgrade's node steps); a task that may also run on
    its own uses ``with cluster_kube(target) as kube:``.
    """
    session = _session.get()
    if session is None:
        raise PermanentError("no Kubernetes session: run this task in a flow written on tasks/procedure.Run, "
                             "or within tasks.cloud.kube_session()", code="NoKubeSession")
    return session.client(target)


@contextlib.contextmanager
def cluster_kube(target: ClusterTarget) -> Iterator[Kube]:
    """The target's Kubernetes client: the run's shared one inside kube_session(), else one of its own."""
    session = _session.get()
    if session is not None:
        yield session.client(target)
        return
    with kube_for(target.cluster_id, target.region) as kube:
        yield kube

"""Fixtures of the cluster twin's contract tests: started KubeClusters and official clients.

A module defines its own ``cluster`` fixture (usually ``make_cluster(...)`` with its nodes); ``api``,
``core``, ``apps`` and ``policy`` are clients of that cluster. Helpers are in helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from tests.twin.kube.helpers import api_client

from twin.kube import KubeCluster, NodeSpec


@pytest.fixture
def make_cluster() -> Iterator[Callable[..., KubeCluster]]:
    """``make_cluster(cluster_id, *nodes, **options)``: a started KubeCluster with ``nodes`` added;
    every cluster made is stopped after the test."""
    made: list[KubeCluster] = []

    def make(cluster_id: str, *nodes: NodeSpec, **options: Any) -> KubeCluster:
        kc = KubeCluster(cluster_id, **options).start()
        made.append(kc)
        for node in nodes:
            kc.add_node(node)
        return kc

    try:
        yield make
    finally:
        for kc in reversed(made):
            kc.stop()


@pytest.fixture
def api(cluster: KubeCluster) -> kubernetes.client.ApiClient:
    return api_client(cluster)


@pytest.fixture
def core(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture
def apps(api: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(api)


@pytest.fixture
def policy(api: kubernetes.client.ApiClient) -> kubernetes.client.PolicyV1Api:
    return kubernetes.client.PolicyV1Api(api)

"""The cluster twin: one Kubernetes API per twin cluster (apiserver + store + small controllers).

Public surface: ``KubeCluster`` (the facade, cluster.py), ``NodeSpec`` and ``KubeTimings``
(types.py). The cloud twin creates one KubeCluster per TKE cluster; flows reach it only through
the kubeconfig that DescribeClusterKubeconfig returns.
"""

from twin.kube.cluster import KubeCluster
from twin.kube.types import KubeTimings, NodeSpec

__all__ = ["KubeCluster", "KubeTimings", "NodeSpec"]

"""Clients the tasks use to reach the outside world: Tencent Cloud API, Kubernetes API, SSH.

- ``tencent``: TencentCloud (one per region; SDK clients per service), typed describe helpers,
  pagination, a shared token-bucket rate limit (``ratelimit``), call counts.
- ``kube``: a Kubernetes client from a kubeconfig string (TLS verified, nothing written to disk),
  watch-based waits (``kube_waits``), cordon/uncordon, eviction.
- ``ssh``: paramiko with known-hosts checking (its own module).

Every third-party exception is turned into tkeflow.errors.TransientError / PermanentError here
(``errors``), so tasks retry by type. The clients never import tkeflow.twin: the twin is reached
over the wire like a real account.
"""

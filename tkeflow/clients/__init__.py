"""Clients the tasks use to reach the outside world: Tencent Cloud API, Kubernetes API, SSH.

- ``tencent``: TencentCloud (one per region; SDK clients per service), ``call`` and the typed
  describe helpers with pagination (``tencent_describe``), a shared token-bucket rate limit
  (``ratelimit``), call counts (``tencent.call_counter``).
- ``kube``: a Kubernetes client from a kubeconfig string (``kube_config``: TLS verified, nothing
  written to disk), wrapped APIs (``kube_api``), watch-based waits (``kube_waits``), cordon/uncordon,
  eviction.
- ``ssh``: paramiko with known-hosts checking (its own module).

Every third-party exception is turned into tkeflow.errors.TransientError / PermanentError here
(``errors`` has the classification), so tasks retry by type. The clients never import twin:
the twin is reached over the wire like a real account.
"""

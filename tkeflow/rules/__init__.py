"""The documented TKE knowledge of SPEC.md as pure functions over plain data.

Who calls it: the specs (static validators), the flows' tasks (planning and validation), and the
twin (for example the kubelet's allocatable follows R-RES). Why pure: every rule must be testable
without a cloud or a cluster, and the same input must always give the same answer. Nothing here
imports clients, the twin, Prefect or an SDK (enforced by import-linter, see pyproject.toml).

Modules: resources (R-RES-1..3), master_sizing (R-CRT-5), routes (R-NET-1/2), data_disk (R-ADD-3),
health (node Ready, workload available, pods that move on a drain, versions, label
selectors: one definition each), capacity (R-UPG-2), upgrade (R-UPG-5 order and batches, R-NODE-1 resume marks, R-NODE-2 eviction
pre-check; R-UPG-1 and R-UPG-4 need the cluster: tasks and flows do them), netpol (R-KR-3 expected
reachability).
"""

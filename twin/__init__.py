"""The digital twin of TKE: a Tencent Cloud API, a Kubernetes API per cluster and SSH hosts.

All of it runs in one process over real sockets on 127.0.0.1 and shares one world model
(twin/world). Flows reach it only over the wire, as they would reach a real account.
The twin imports nothing of flows, tasks or clients.
"""

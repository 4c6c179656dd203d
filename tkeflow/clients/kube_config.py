"""Turn a kubeconfig string into a kubernetes client Configuration without writing it to disk.

Who calls it: tkeflow.clients.kube.Kube (the kubeconfig comes from DescribeClusterKubeconfig, kept
by the tasks layer in a Prefect Secret block). Why not kubernetes.config.load_kube_config_from_dict:
it writes certificate-authority-data and client-key-data to temporary files, and a cluster's admin
key must never touch the disk. Here the CA goes in memory (``ca_cert_data``) and a client key, which
urllib3 can only load from a path, goes to an anonymous in-memory file (``memfd_create``).

TLS is always verified: ``insecure-skip-tls-verify`` and plain ``http://`` servers are refused.
Supported credentials: bearer token, client certificate, CA, all inline (``*-data``). Exec plugins and
auth-providers are not (TKE's kubeconfigs use a token or a client certificate), and neither are
credentials by path (``tokenFile``, ``client-key``, ``client-certificate``, ``certificate-authority``):
the kubeconfig comes from a Prefect Secret block, and a tampered block must not make a worker read
(or send as a bearer token) any file it can see (issue 14 item 9).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes import client

from tkeflow import errors


def _bad(message: str) -> errors.PermanentError:
    # Never echo the kubeconfig's content: it holds credentials.
    return errors.PermanentError(f"kubeconfig: {message}", code="InvalidKubeconfig")


@dataclass
class InMemoryFiles:
    """Anonymous in-memory files (memfd) holding key material; ``close()`` releases them."""

    fds: list[int] = field(default_factory=list)

    def path_for(self, name: str, content: bytes) -> str:
        if not hasattr(os, "memfd_create"):
            raise _bad("client-certificate-data needs memfd_create (Linux); use a token or certificate files")
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.write(fd, content)
        self.fds.append(fd)
        return f"/proc/{os.getpid()}/fd/{fd}"

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def _named(entries: Any, name: str, kind: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(kind) or {}
    raise _bad(f"no {kind} named {name!r}")


def _decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise _bad(f"{what} is not valid base64") from exc


# key -> its inline form: refused, with the fix (the path is not echoed: it says what was being read)
BY_PATH = {"tokenFile": "token", "client-key": "client-key-data", "client-certificate": "client-certificate-data",
           "certificate-authority": "certificate-authority-data"}


def _refuse_paths(entry: dict[str, Any], what: str) -> None:
    for key, inline in BY_PATH.items():
        if entry.get(key):
            raise _bad(f"{what} gives {key} by path; only inline credentials are accepted "
                       f"(fix: put the content in {inline})")


def _parse(text: str, context: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cluster, user) entries of the chosen context."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise _bad("not valid YAML") from None  # the parser's message may quote credentials
    if not isinstance(doc, dict):
        raise _bad("not a mapping")
    context_name = context or doc.get("current-context")
    if not context_name:
        raise _bad("no context given and no current-context")
    ctx = _named(doc.get("contexts"), context_name, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users"), ctx.get("user", ""), "user")
    return cluster, user


def _apply_cluster(config: client.Configuration, cluster: dict[str, Any]) -> None:
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise _bad(f"server {server!r} is not https:// (TLS is required)")
    if cluster.get("insecure-skip-tls-verify"):
        raise _bad("insecure-skip-tls-verify is refused: give certificate-authority-data")
    _refuse_paths(cluster, "the cluster")
    config.host = server.rstrip("/")
    config.verify_ssl = True
    if cluster.get("certificate-authority-data"):
        config.ca_cert_data = _decode(cluster["certificate-authority-data"], "certificate-authority-data").decode()
    if cluster.get("tls-server-name"):
        config.tls_server_name = cluster["tls-server-name"]


def _apply_user(config: client.Configuration, user: dict[str, Any], memfiles: InMemoryFiles) -> None:
    if user.get("exec") or user.get("auth-provider"):
        raise _bad("exec and auth-provider credentials are not supported; use a token or a client certificate")
    _refuse_paths(user, "the user")
    token = user.get("token")
    if token:
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
    if user.get("client-certificate-data") and user.get("client-key-data"):
        config.cert_file = memfiles.path_for("kube-client-cert", _decode(user["client-certificate-data"], "client-certificate-data"))
        config.key_file = memfiles.path_for("kube-client-key", _decode(user["client-key-data"], "client-key-data"))
    if not token and not config.cert_file:
        raise _bad("the user has neither a token nor a client certificate")


def configuration_from_kubeconfig(text: str, context: str | None = None) -> tuple[client.Configuration, InMemoryFiles]:
    """A fresh Configuration (never the process default) and the in-memory files it uses."""
    cluster, user = _parse(text, context)
    config = client.Configuration()
    _apply_cluster(config, cluster)
    memfiles = InMemoryFiles()
    try:
        _apply_user(config, user, memfiles)
    except errors.PermanentError:
        memfiles.close()
        raise
    return config, memfiles

"""Whether this process talks to the twin, and where: TKEFLOW_TWIN_ENDPOINT only in explicit twin mode.

Who calls it: tkeflow.clients.tencent (the cloud endpoint) and tkeflow.clients.ssh (the twin's SSH
address map, GET /_twin/ssh), and the CLI (`--twin` turns twin mode on and prints it).

Why (issue 14 item 6): a leftover TKEFLOW_TWIN_ENDPOINT used to send every cloud call, passwords
included, over plain HTTP to whatever host it named, and SSH then took host keys from that host's
unauthenticated /_twin/ssh. Now the endpoint is honoured only when
- twin mode is explicit: ``tkeflow run/plan --twin``, the demo, or ``TKEFLOW_TWIN=1`` (the line
  ``tkeflow twin serve`` prints and writes to its env file beside the endpoint), and
- it names a loopback address (the twin serves on 127.0.0.1 only).
Otherwise the real ``*.tencentcloudapi.com`` over HTTPS is used and SSH checks known_hosts alone.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

from tkeflow import errors

log = logging.getLogger(__name__)

MODE_ENV = "TKEFLOW_TWIN"  # "1": explicit twin mode
ENDPOINT_ENV = "TKEFLOW_TWIN_ENDPOINT"
_ON = frozenset({"1", "true", "yes", "on"})
_LOOPBACK_NAMES = frozenset({"localhost"})


def enabled() -> bool:
    """Whether twin mode is explicitly on (``TKEFLOW_TWIN=1``; `--twin` sets it)."""
    return (os.environ.get(MODE_ENV) or "").strip().lower() in _ON


def host_of(endpoint: str) -> str:
    """The host part of ``host:port``, ``[v6]:port`` or ``http://host:port/``."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    return (parsed.hostname or "").lower()


def is_loopback(endpoint: str) -> bool:
    host = host_of(endpoint)
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(endpoint: str, what: str = ENDPOINT_ENV) -> str:
    """``endpoint`` when it names a loopback address; a PermanentError (nothing sent) otherwise."""
    if not is_loopback(endpoint):
        raise errors.PermanentError(
            f"{what}={endpoint!r} is not a loopback address: the twin serves on 127.0.0.1 only, and a "
            "plain-HTTP endpoint elsewhere would receive every call and password (fix: unset it to use "
            "the real Tencent Cloud, or point it at the twin on 127.0.0.1)", code="InvalidTwinEndpoint")
    return endpoint


def endpoint() -> str | None:
    """The twin endpoint the clients use: TKEFLOW_TWIN_ENDPOINT in twin mode, loopback only; else None."""
    value = (os.environ.get(ENDPOINT_ENV) or "").strip()
    if not value:
        return None
    if not enabled():
        log.warning("%s is set but twin mode is off (--twin or %s=1): ignored; using the real Tencent Cloud",
                    ENDPOINT_ENV, MODE_ENV)
        return None
    return require_loopback(value)

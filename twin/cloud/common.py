"""Filters, paging and small helpers shared by the cloud twin's services.

Who calls it: the responses modules of tke, cvm and vpc. Filters follow the API's rule: values of one
filter are ORed, filters are ANDed; an unknown filter name is refused (the real API does too).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from twin.cloud import exceptions as exc

T = TypeVar("T")
Getter = Callable[[Any], Iterable[str]]


def apply_filters(items: Iterable[T], filters: Sequence[dict[str, Any]] | None, getters: dict[str, Getter],
                  error: type[exc.CloudError] = exc.InvalidParameterValue,
                  prefixed: dict[str, Callable[[Any, str], Iterable[str]]] | None = None) -> list[T]:
    """Keep the items that match every filter; ``prefixed`` handles names like ``tag:env``."""
    result = list(items)
    for f in filters or []:
        name = f.get("Name") or ""
        values = {str(v) for v in f.get("Values") or []}
        getter = getters.get(name)
        if getter is None and prefixed:
            for prefix, fn in prefixed.items():
                if name.startswith(prefix):
                    key = name[len(prefix):]
                    getter = (lambda item, _fn=fn, _key=key: _fn(item, _key))
                    break
        if getter is None:
            raise error(f"The filter name `{name}` is not supported.")
        result = [item for item in result if values & {str(v) for v in getter(item)}]
    return result


def page(items: list[T], offset: Any, limit: Any, default_limit: int = 20, max_limit: int = 100) -> list[T]:
    """Offset/Limit as the APIs take them (ints, or strings for VPC)."""
    try:
        start = int(offset) if offset not in (None, "") else 0
        count = int(limit) if limit not in (None, "") else default_limit
    except ValueError as e:
        raise exc.InvalidParameterValue("Offset and Limit must be integers.") from e
    if start < 0 or count < 0 or count > max_limit:
        raise exc.InvalidParameterValue(f"Limit must be between 0 and {max_limit}; Offset must be >= 0.")
    return items[start:start + count]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_plain() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def network(cidr: str, what: str, error: type[exc.CloudError] = exc.InvalidParameterValue) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as e:
        raise error(f"The {what} `{cidr}` is not a valid CIDR block.") from e
    if not isinstance(net, ipaddress.IPv4Network):
        raise error(f"The {what} `{cidr}` is not an IPv4 CIDR block.")
    return net


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a, strict=False).overlaps(ipaddress.ip_network(b, strict=False))


def contains_ip(cidr: str, ip: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(specs: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    """A request's TagSpecification list (CreateCluster, RunInstances) as key -> value."""
    return {t["Key"]: t.get("Value", "") for spec in specs or [] for t in spec.get("Tags") or []}

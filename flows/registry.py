"""Which flow runs which kind of config: the CLI, the demo and the deployments look it up here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: kind -> (module, flow function, deployment name). Order = the order the demo runs them in.
FLOWS: dict[str, tuple[str, str, str]] = {
    "Cluster": ("flows.create_cluster", "create_cluster", "create-cluster"),
    "ExistingHosts": ("flows.add_existing_hosts", "add_existing_hosts", "add-existing-hosts"),
    "NodeUpgrade": ("flows.upgrade_nodes", "upgrade_nodes", "rolling-node-upgrade"),
}


def available_kinds() -> list[str]:
    """Kinds whose flow module is importable in this installation."""
    kinds = []
    for kind, (module, _fn, _name) in FLOWS.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        kinds.append(kind)
    return kinds


def flow_for(kind: str) -> Callable[..., Any]:
    """The Prefect flow for a config kind; a clear error when that procedure has no flow."""
    if kind not in FLOWS:
        raise KeyError(f"no procedure runs kind {kind!r}; runnable kinds: {', '.join(available_kinds())}")
    module, fn, _name = FLOWS[kind]
    return getattr(importlib.import_module(module), fn)

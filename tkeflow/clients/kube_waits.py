"""Waits on a Kubernetes cluster built on watch: list, check, then watch from that resourceVersion.

Who calls it: tasks that wait for nodes (create cluster, add hosts, rolling upgrade), pods
(kube-system, probes, kube-router) and deployments, through ``Kube.wait_*`` (WaitsMixin is mixed
into tkeflow.clients.kube.Kube). Why watch: the kubernetes client's own waits (and DESIGN.md) want no
fixed sleeps; an event wakes the check the moment the state changes. What "Ready" and "available"
mean is not decided here: the predicates delegate to tkeflow/rules/health.py, the one health model.

``wait_for`` semantics: list (resourceVersion R), test the predicate on the whole current set; then
watch from R, apply each event to the set and re-test. A 410 Gone (R expired) re-lists. A dropped
connection re-lists after a short backoff (an Event wait, not a sleep). Everything is bounded by one
deadline. On timeout it raises WaitTimeout (a PermanentError: the spec's timeout is the budget, and a
task retry would only wait that long again) naming ``what`` and, via ``explain``, what is still
missing; when the API server could not be reached at all until the deadline, it raises
TransientError instead (a later retry may reach it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kubernetes import watch
from kubernetes.client import exceptions as kube_exceptions

from tkeflow import errors
from tkeflow.clients.kube_api import THIRD_PARTY_ERRORS, selectors, translate, unguarded
from tkeflow.rules import health

Objects = dict[tuple[str | None, str], Any]
HTTP_GONE = 410
MAX_RELIST_BACKOFF_S = 2.0
CONNECT_TIMEOUT_S = 10.0


class WaitTimeout(errors.PermanentError):
    """A wait ran out of time; the message says what was awaited and what was still missing."""


def _key(obj: Any) -> tuple[str | None, str]:
    return obj.metadata.namespace, obj.metadata.name


def as_api_dict(obj: Any) -> dict[str, Any]:
    """A kubernetes client model as the API's JSON (camelCase dict), what tkeflow.rules.health takes."""
    return obj if isinstance(obj, dict) else obj.to_dict(serialize=True)


# The waits' predicates: thin adapters from the client's models to the one health model
# (tkeflow/rules/health.py), so that a wait and a validation can never disagree on "Ready".

def is_node_ready(node: Any) -> bool:
    return health.node_ready(as_api_dict(node))


def kubelet_version(node: Any) -> str:
    return health.kubelet_version(as_api_dict(node))


def is_node_ready_at(node: Any, version: str | None) -> bool:
    """Ready with the kubelet at ``version`` (``v1.30.0-tke.5`` is 1.30.0; ``v1.30.10`` is not)."""
    return health.node_ready_at(as_api_dict(node), version)


def is_pod_ready(pod: Any) -> bool:
    return health.pod_ready(as_api_dict(pod))


def is_deployment_available(deployment: Any) -> bool:
    return health.deployment_rollout(as_api_dict(deployment)).available


def is_daemonset_ready(daemonset: Any) -> bool:
    return health.daemonset_rollout(as_api_dict(daemonset)).available


def _node_state(node: Any | None, version: str | None) -> str:
    return health.describe_node(None if node is None else as_api_dict(node), version)


class WaitsMixin:
    """Watch-based waits; needs ``self.core``, ``self.apps`` and ``self.request_timeout_s``."""

    core: Any
    apps: Any
    request_timeout_s: float

    def wait_for(
        self,
        list_fn: Callable[..., Any],
        predicate: Callable[[list[Any]], bool],
        timeout_s: float,
        what: str,
        *,
        explain: Callable[[list[Any]], str] | None = None,
        **list_kwargs: Any,
    ) -> list[Any]:
        """Block until ``predicate(current objects)`` holds; return those objects (see module doc)."""
        fn = unguarded(list_fn)
        deadline = time.monotonic() + timeout_s
        objects: Objects | None = None
        last_error: errors.TkeflowError | None = None
        backoff = 0.1
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                listing = fn(**list_kwargs, _request_timeout=(CONNECT_TIMEOUT_S, max(1.0, min(remaining, self.request_timeout_s))))
                objects = {_key(o): o for o in listing.items or []}
                if predicate(list(objects.values())):
                    return list(objects.values())
                if self._watch_until(fn, list_kwargs, objects, listing.metadata.resource_version, predicate, deadline):
                    return list(objects.values())
                last_error = None
            except kube_exceptions.ApiException as exc:
                if exc.status == HTTP_GONE:
                    continue  # our resourceVersion expired: list again
                last_error = self._transient_or_raise(exc, what)
            except THIRD_PARTY_ERRORS as exc:
                last_error = self._transient_or_raise(exc, what)
            if last_error is not None:
                threading.Event().wait(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, MAX_RELIST_BACKOFF_S)
        raise self._timeout_error(what, timeout_s, objects, explain, last_error)

    @staticmethod
    def _transient_or_raise(exc: BaseException, what: str) -> errors.TkeflowError:
        error = translate(exc, f"waiting for {what}")
        if not isinstance(error, errors.TransientError):
            raise error from exc
        return error

    @staticmethod
    def _timeout_error(
        what: str, timeout_s: float, objects: Objects | None, explain: Callable[[list[Any]], str] | None,
        last_error: errors.TkeflowError | None,
    ) -> errors.TkeflowError:
        if objects is None and last_error is not None:
            return errors.TransientError(f"timed out after {timeout_s:g}s waiting for {what}: {last_error}", code="WaitTimeout")
        detail = explain(list(objects.values())) if (explain and objects is not None) else ""
        return WaitTimeout(f"timed out after {timeout_s:g}s waiting for {what}" + (f": {detail}" if detail else ""), code="WaitTimeout")

    def _watch_until(
        self, fn: Callable[..., Any], list_kwargs: dict[str, Any], objects: Objects, resource_version: str,
        predicate: Callable[[list[Any]], bool], deadline: float,
    ) -> bool:
        """Apply watch events to ``objects`` until the predicate holds (True) or the deadline (False)."""
        while (remaining := deadline - time.monotonic()) > 0:
            watcher = watch.Watch()
            stream = watcher.stream(
                fn, resource_version=resource_version, timeout_seconds=max(1, int(remaining + 0.999)),
                allow_watch_bookmarks=True, _request_timeout=(CONNECT_TIMEOUT_S, remaining + 5), **list_kwargs,
            )
            try:
                for event in stream:
                    kind, obj = event["type"], event["object"]
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        objects.pop(_key(obj), None)
                    else:
                        objects[_key(obj)] = obj
                    if predicate(list(objects.values())):
                        return True
                    if time.monotonic() >= deadline:
                        return False
            finally:
                watcher.stop()
                stream.close()  # runs the stream's own cleanup: the connection goes back now
            resource_version = watcher.resource_version or resource_version
        return False

    # --- the waits the flows use ---------------------------------------------------------------

    def wait_nodes_ready(
        self, names: Sequence[str] | None = None, *, count: int | None = None, version: str | None = None,
        timeout_s: float, label_selector: str | None = None,
    ) -> list[Any]:
        """Nodes Ready (at kubelet ``version`` if given): all of ``names``, or at least ``count``.

        Returns the Ready nodes that count (those of ``names``, else all Ready matching ones).
        """
        if names is None and count is None:
            raise ValueError("give names or count")
        wanted = list(names or [])

        def ready(nodes: list[Any]) -> list[Any]:
            return [n for n in nodes if is_node_ready_at(n, version)]

        def done(nodes: list[Any]) -> bool:
            ready_names = {n.metadata.name for n in ready(nodes)}
            return all(name in ready_names for name in wanted) and (count is None or len(ready_names) >= count)

        def explain(nodes: list[Any]) -> str:
            by_name = {n.metadata.name: n for n in nodes}
            states = [f"{name}: {_node_state(by_name.get(name), version)}" for name in wanted]
            states = [s for s in states if not s.endswith(": Ready")]
            if count is not None:
                states.append(f"{len(ready(nodes))} of {count} nodes Ready")
            return "; ".join(states)

        what = f"nodes {', '.join(wanted)}" if wanted else f"{count} nodes"
        what += f" Ready at {version}" if version else " Ready"
        nodes = self.wait_for(self.core.list_node, done, timeout_s, what, explain=explain, **selectors(label_selector))
        matched = ready(nodes)
        return [n for n in matched if n.metadata.name in wanted] if wanted else matched

    def wait_node_ready(self, name: str, version: str | None = None, *, timeout_s: float) -> Any:
        """One node Ready (at ``version``); returns it."""
        def done(nodes: list[Any]) -> bool:
            return any(is_node_ready_at(n, version) for n in nodes)

        def explain(nodes: list[Any]) -> str:
            return f"{name}: {_node_state(nodes[0] if nodes else None, version)}"

        what = f"node {name} Ready" + (f" at {version}" if version else "")
        nodes = self.wait_for(self.core.list_node, done, timeout_s, what, explain=explain, field_selector=f"metadata.name={name}")
        return nodes[0]

    def wait_pods_ready(
        self, namespace: str | None, *, label_selector: str | None = None, predicate: Callable[[Any], bool] | None = None,
        min_count: int = 1, timeout_s: float,
    ) -> list[Any]:
        """At least ``min_count`` pods (matching the selector and ``predicate``), all Ready.

        Terminating pods and finished ones (Succeeded) do not count either way.
        """
        def relevant(pods: list[Any]) -> list[Any]:
            return [p for p in pods if p.metadata.deletion_timestamp is None
                    and (p.status is None or p.status.phase != "Succeeded") and (predicate is None or predicate(p))]

        def done(pods: list[Any]) -> bool:
            live = relevant(pods)
            return len(live) >= min_count and all(is_pod_ready(p) for p in live)

        def explain(pods: list[Any]) -> str:
            live = relevant(pods)
            not_ready = [f"{p.metadata.namespace}/{p.metadata.name} ({p.status.phase if p.status else '?'})"
                         for p in live if not is_pod_ready(p)]
            return f"{len(live) - len(not_ready)} of {max(min_count, len(live))} Ready" + (f"; not Ready: {', '.join(not_ready[:10])}" if not_ready else "")

        where = namespace or "all namespaces"
        what = f"pods in {where}" + (f" with {label_selector}" if label_selector else "") + " Ready"
        if namespace:
            pods = self.wait_for(self.core.list_namespaced_pod, done, timeout_s, what, explain=explain,
                                 namespace=namespace, **selectors(label_selector))
        else:
            pods = self.wait_for(self.core.list_pod_for_all_namespaces, done, timeout_s, what, explain=explain,
                                 **selectors(label_selector))
        return relevant(pods)

    def wait_deployments_available(
        self, namespace: str, names: Iterable[str] | None = None, *, label_selector: str | None = None, timeout_s: float,
    ) -> list[Any]:
        """The named deployments (or all matching the selector) rolled out and fully available."""
        wanted = list(names or [])

        def chosen(deployments: list[Any]) -> list[Any]:
            return [d for d in deployments if not wanted or d.metadata.name in wanted]

        def done(deployments: list[Any]) -> bool:
            present = {d.metadata.name for d in deployments}
            return all(n in present for n in wanted) and all(is_deployment_available(d) for d in chosen(deployments))

        def explain(deployments: list[Any]) -> str:
            present = {d.metadata.name: d for d in deployments}
            missing = [f"{n}: absent" for n in wanted if n not in present]
            rollouts = {d.metadata.name: health.deployment_rollout(as_api_dict(d)) for d in chosen(deployments)}
            waiting = [f"{name}: {r.detail}" for name, r in rollouts.items() if not r.available]
            return "; ".join(missing + waiting)

        what = f"deployments {', '.join(wanted) or label_selector or 'all'} in {namespace} available"
        found = self.wait_for(self.apps.list_namespaced_deployment, done, timeout_s, what, explain=explain,
                              namespace=namespace, **selectors(label_selector))
        return chosen(found)

    def wait_daemonset_ready(self, namespace: str, name: str, *, timeout_s: float) -> Any:
        """A DaemonSet's pods scheduled, updated and Ready on every node it targets."""
        def done(items: list[Any]) -> bool:
            return bool(items) and is_daemonset_ready(items[0])

        def explain(items: list[Any]) -> str:
            return health.daemonset_rollout(as_api_dict(items[0])).detail if items else "absent"

        what = f"daemonset {namespace}/{name} ready"
        items = self.wait_for(self.apps.list_namespaced_daemon_set, done, timeout_s, what, explain=explain,
                              namespace=namespace, field_selector=f"metadata.name={name}")
        return items[0]

    def wait_pods_gone(self, pods: Iterable[Any], *, timeout_s: float, field_selector: str | None = None) -> None:
        """Until every given pod (by UID: a replacement with the same name does not count) is gone."""
        uids = {p.metadata.uid: f"{p.metadata.namespace}/{p.metadata.name}" for p in pods}
        if not uids:
            return

        def done(current: list[Any]) -> bool:
            return not any(p.metadata.uid in uids for p in current)

        def explain(current: list[Any]) -> str:
            return "still there: " + ", ".join(sorted(uids[p.metadata.uid] for p in current if p.metadata.uid in uids))

        self.wait_for(self.core.list_pod_for_all_namespaces, done, timeout_s, f"{len(uids)} pods gone", explain=explain,
                      **selectors(field_selector=field_selector))

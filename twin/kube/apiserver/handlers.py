"""The REST verbs of the twin's apiserver: get, list, watch, create, update, patch, delete,
plus the status, scale, eviction, binding and log subresources and the discovery documents.

``Api.dispatch`` is what server.ApiServer calls for each authenticated request. Handlers stay thin:
admission (objects.py), deletion semantics (deletion.py), eviction (eviction.py), watch streams
(watch.py), tables (table.py) and protobuf request bodies (protobuf.py) live beside them; the Store
holds the state. Lists join the Store's per-object JSON bytes, so 30,000 pods serialize in well
under a second. Responses are always JSON (clients that prefer protobuf accept JSON too).
Not emulated: server-side apply (415), aggregated discovery (clients fall back to the legacy
documents), OpenAPI schemas (minimal v3 documents only, see discovery.py), exec/attach/port-forward,
impersonation, RBAC enforcement (any valid token is cluster-admin), fieldValidation=Strict.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Any

from twin.kube import errors, patch
from twin.kube.apiserver import discovery, protobuf, router, table, wire
from twin.kube.apiserver.deletion import Deleter
from twin.kube.apiserver.eviction import Evictor
from twin.kube.apiserver.objects import Admission
from twin.kube.resources import Resource
from twin.kube.apiserver.server import Request, Response, status_response
from twin.kube.apiserver.watch import WatchStream
from twin.kube.store import Store

log = logging.getLogger(__name__)

_HEALTH = ("/healthz", "/livez", "/readyz")
_PATCH_RETRIES = 5
_PARTIAL = "as=PartialObjectMetadata"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode())


def _body(request: Request) -> Any:
    if not request.body:
        return {}
    content_type = request.header("content-type")
    if "protobuf" in content_type:  # client-go's typed clients (kubectl create <kind>)
        return protobuf.decode(request.body)
    if "yaml" in content_type and "apply-patch" not in content_type:
        raise errors.UnsupportedMediaType("the body of the request was in an unknown format - accepted media types "
                                          "include: application/json, application/vnd.kubernetes.protobuf")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"the body of the request could not be decoded: {exc}") from None


def _encode_continue(rv: str, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": int(rv), "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """(resourceVersion of the list's first page, last key served) from a continue token."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), (data["start"][0], data["start"][1])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise errors.BadRequest("continue key is not valid: the continue token is invalid") from None


_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter."
)


class Api:
    """Routes one request to its handler against one Store."""

    def __init__(self, store: Store, admission: Admission, deleter: Deleter, evictor: Evictor,
                 git_version: Callable[[], str], server_address: Callable[[], str]):
        self.store = store
        self.admission = admission
        self.deleter = deleter
        self.evictor = evictor
        self._git_version = git_version
        self._server_address = server_address

    def dispatch(self, request: Request) -> Response:
        try:
            return self._route(request)
        except errors.KubeError as error:
            return status_response(error)
        except Exception as exc:  # a twin bug must come back as a 500 Status, not a dropped connection
            log.exception("kube-apiserver handler failed for %s %s", request.method, request.path)
            return status_response(errors.InternalError(f"twin apiserver error: {exc}"))

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        target = router.parse(path)
        if target is None:
            return self._non_resource(request, path)
        method = request.method
        if method == "GET":
            return self._get(request, target)
        if method == "POST":
            return self._post(request, target)
        if method == "PUT" and target.name:
            return self._put(request, target)
        if method == "PATCH" and target.name:
            return self._patch(request, target)
        if method == "DELETE":
            return self._delete(request, target)
        raise errors.MethodNotAllowed()

    def _non_resource(self, request: Request, path: str) -> Response:
        if request.method != "GET":
            raise errors.MethodNotAllowed()
        if path in _HEALTH:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        doc: dict[str, Any] | None = None
        if path == "/version":
            doc = discovery.version(self._git_version())
        elif path == "/api":
            doc = discovery.core_versions(self._server_address())
        elif path == "/apis":
            doc = discovery.group_list()
        elif path == "/api/v1":
            doc = discovery.resource_list("v1")
        elif path == "/openapi/v3":
            doc = discovery.openapi_v3_root()
        elif path.startswith("/openapi/v3/"):
            group_version = path.removeprefix("/openapi/v3/").removeprefix("api/").removeprefix("apis/")
            doc = discovery.openapi_v3(group_version, self._git_version())
        elif path.startswith("/apis/"):
            parts = path.split("/")[2:]
            doc = discovery.api_group(parts[0]) if len(parts) == 1 else discovery.resource_list("/".join(parts[:2]))
        if doc is None:
            raise errors.NotFound("", "", message="the server could not find the requested resource")
        return _json(doc)

    # ---- GET ---------------------------------------------------------------------------
    def _get(self, request: Request, target: router.Target) -> Response:
        res, accept = target.resource, request.header("accept")
        if target.legacy_watch or (target.name is None and request.query.get("watch") in ("true", "1")):
            query = dict(request.query)
            if target.name is not None:  # /api/v1/watch/.../<name>: a watch of one object
                query["fieldSelector"] = f"metadata.name={target.name}"
            stream = WatchStream(self.store, res, target.namespace, query, request.closed, as_table=table.wants_table(accept))
            return Response(200, content_type="application/json", stream=iter(_Closing(stream)))
        if target.name is None:
            return self._list(request, target)
        obj = self.store.get(res.key, target.namespace, target.name)
        if target.subresource == "scale":
            return _json(_scale(res, obj))
        if target.subresource == "log":
            return _pod_log(obj, request.query.get("container"))
        if target.subresource in ("eviction", "binding"):
            raise errors.MethodNotAllowed()
        if table.wants_table(accept):
            return _json(table.table(res.key, [obj], obj["metadata"]["resourceVersion"], None,
                                     request.query.get("includeObject", "Metadata")))
        if _PARTIAL in accept:
            return _json(_partial(obj))
        return Response(200, self.store.encoded(res.key, obj))

    def _list(self, request: Request, target: router.Target) -> Response:
        res, query = target.resource, request.query
        limit = int(query.get("limit") or 0) or None
        start, first_rv = None, None
        if query.get("continue"):
            first_rv, start = _decode_continue(query["continue"])
            if first_rv < self.store.history_floor:
                raise errors.Gone(_CONTINUE_EXPIRED)
        items, rv, last = self.store.list_page(res.key, target.namespace, query.get("labelSelector"),
                                               query.get("fieldSelector"), limit, start)
        # every page reports the first page's resourceVersion, so that a watch started from the list's
        # resourceVersion replays whatever changed while the pages were read (no event is missed)
        rv = str(first_rv) if first_rv is not None else rv
        token = _encode_continue(rv, last) if last else None
        if table.wants_table(request.header("accept")):
            return _json(table.table(res.key, items, rv, token, query.get("includeObject", "Metadata")))
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        if _PARTIAL in request.header("accept"):  # metadata-only lists (client-go metadata informers)
            return _json({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                          "items": [_partial(o) for o in items]})
        head = json.dumps({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta}, separators=(",", ":"))
        encoded = self.store.encoded
        body = b"".join((head[:-1].encode(), b',"items":[', b",".join(encoded(res.key, o) for o in items), b"]}"))
        return Response(200, body)

    # ---- POST --------------------------------------------------------------------------
    def _post(self, request: Request, target: router.Target) -> Response:
        res = target.resource
        if target.subresource == "eviction" and target.name:
            body = _body(request)
            return _json(self.evictor.evict(target.namespace or "default", target.name, body), 201)
        if target.subresource == "binding" and target.name:
            return self._bind(target, _body(request))
        if target.name is not None:
            raise errors.MethodNotAllowed()
        obj = self.admission.admit_create(res, target.namespace, _body(request))
        if request.query.get("dryRun"):
            return Response(201, wire.encode(res.key, obj))
        return Response(201, self.store.encoded(res.key, self.store.create(res.key, obj)))

    def _bind(self, target: router.Target, binding: dict[str, Any]) -> Response:
        pod = self.store.get("pods", target.namespace, target.name or "")
        if pod.get("spec", {}).get("nodeName"):
            raise errors.Conflict("pods", target.name or "", f"pod {target.name} is already assigned to node \"{pod['spec']['nodeName']}\"")
        node = (binding.get("target") or {}).get("name", "")
        self.store.update("pods", {**pod, "spec": {**pod.get("spec", {}), "nodeName": node}})
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    # ---- PUT ---------------------------------------------------------------------------
    def _put(self, request: Request, target: router.Target) -> Response:
        res, name = target.resource, target.name or ""
        body = _body(request)
        current = self.store.get(res.key, target.namespace, name)
        if target.subresource == "scale":
            return self._write_scale(res, current, body)
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise errors.BadRequest(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        body.setdefault("metadata", {})["name"] = name
        new = self._merge_for_subresource(res, target.subresource, current, body)
        self._validate_update(res, target.subresource, current, new)
        expect = (body.get("metadata") or {}).get("resourceVersion")
        if request.query.get("dryRun"):
            return Response(200, wire.encode(res.key, new))
        return Response(200, self.store.encoded(res.key, self.store.update(res.key, new, expect_rv=expect)))

    def _validate_update(self, res: Resource, sub: str | None, current: dict[str, Any], new: dict[str, Any]) -> None:
        self.admission.validate(res, new)
        if sub is None:
            self.admission.validate_update(res, current, new)

    @staticmethod
    def _merge_for_subresource(res: Resource, sub: str | None, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """status subresource writes only status; the main resource never writes status."""
        if sub == "status":
            return {**current, "metadata": {**current["metadata"], "resourceVersion": new["metadata"].get("resourceVersion")},
                    "status": new.get("status", {})}
        if res.has_status:
            merged = {**new, "status": current.get("status", {})}
            if "status" not in current:
                merged.pop("status")
            return merged
        return new

    # ---- PATCH -------------------------------------------------------------------------
    def _patch(self, request: Request, target: router.Target) -> Response:
        res, name = target.resource, target.name or ""
        content_type = request.header("content-type", patch.MERGE_PATCH)
        if content_type.startswith(patch.APPLY_PATCH):
            raise errors.UnsupportedMediaType("server-side apply is not supported by the twin; use client-side apply")
        body = _body(request)
        for attempt in range(_PATCH_RETRIES):
            current = self.store.get(res.key, target.namespace, name)
            base = _scale(res, current) if target.subresource == "scale" else current
            patched = patch.apply(content_type, base, body)
            if target.subresource == "scale":
                return self._write_scale(res, current, patched)
            asked_rv = (patched.get("metadata") or {}).get("resourceVersion")
            pinned = bool(asked_rv) and asked_rv != current["metadata"]["resourceVersion"]
            if pinned:
                raise errors.Conflict(res.key, name)
            patched.setdefault("metadata", {})["name"] = name
            new = self._merge_for_subresource(res, target.subresource, current, patched)
            self._validate_update(res, target.subresource, current, new)
            if request.query.get("dryRun"):
                return Response(200, wire.encode(res.key, new))
            try:
                stored = self.store.update(res.key, new, expect_rv=current["metadata"]["resourceVersion"])
            except errors.Conflict:
                if attempt == _PATCH_RETRIES - 1:
                    raise
                continue  # someone wrote in between: re-apply the patch on the new state, as the apiserver does
            return Response(200, self.store.encoded(res.key, stored))
        raise errors.Conflict(res.key, name)

    def _write_scale(self, res: Resource, current: dict[str, Any], scale: dict[str, Any]) -> Response:
        replicas = (scale.get("spec") or {}).get("replicas")
        if replicas is None or int(replicas) < 0:
            raise errors.Invalid("Scale", current["metadata"]["name"], [("spec.replicas", "Invalid value: must be greater than or equal to 0")], "autoscaling")
        expect = (scale.get("metadata") or {}).get("resourceVersion")
        spec = {**current.get("spec", {}), "replicas": int(replicas)}
        stored = self.store.update(res.key, {**current, "spec": spec}, expect_rv=expect)
        return _json(_scale(res, stored))

    # ---- DELETE ------------------------------------------------------------------------
    def _delete(self, request: Request, target: router.Target) -> Response:
        res = target.resource
        options = _body(request) if request.body else {}
        for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if key in request.query:
                value: Any = request.query[key]
                options[key] = int(value) if key == "gracePeriodSeconds" else (value == "true" if key == "orphanDependents" else value)
        if target.subresource:
            raise errors.MethodNotAllowed()
        if target.name is None:
            return self._delete_collection(request, target, options)
        if request.query.get("dryRun"):
            return Response(200, self.store.encoded(res.key, self.store.get(res.key, target.namespace, target.name)))
        gone = self.deleter.delete(res.key, target.namespace, target.name, options)
        return _json(gone)

    def _delete_collection(self, request: Request, target: router.Target, options: dict[str, Any]) -> Response:
        res = target.resource
        items, rv = self.store.list(res.key, target.namespace, request.query.get("labelSelector"), request.query.get("fieldSelector"))
        deleted = []
        for obj in items:
            try:
                deleted.append(self.deleter.delete(res.key, obj["metadata"].get("namespace"), obj["metadata"]["name"], options))
            except errors.NotFound:
                continue
            except errors.Forbidden:
                continue  # protected namespaces stay, the rest go
        return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": {"resourceVersion": rv}, "items": deleted})


def _pod_log(pod: dict[str, Any], container: str | None) -> Response:
    """pods/log: the twin's containers print nothing (probe outcomes are in the pod's status); the
    apiserver's errors for a wrong container or one that has not started are kept."""
    name = pod["metadata"]["name"]
    names = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
    if container is None and len(names) > 1:
        raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: {names}")
    container = container or (names[0] if names else "")
    if container not in names:
        raise errors.BadRequest(f"container {container} is not valid for pod {name}")
    if pod.get("status", {}).get("phase", "Pending") == "Pending":
        raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
    return Response(200, b"", "text/plain")


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def _scale(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    if "scale" not in res.subresources:
        raise errors.NotFound("", "", message="the server could not find the requested resource")
    meta = obj["metadata"]
    selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": ",".join(f"{k}={v}" for k, v in selector.items())},
    }


class _Closing:
    """Iterates a WatchStream and unsubscribes it however the iteration ends."""

    def __init__(self, stream: WatchStream):
        self._stream = stream

    def __iter__(self) -> Any:
        try:
            yield from self._stream
        finally:
            self._stream.close()

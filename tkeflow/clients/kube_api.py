"""The kubernetes client's exceptions made tkeflow's, for every call the clients make.

Who calls it: tkeflow.clients.kube (``GuardedApi`` wraps CoreV1Api & co.) and
tkeflow.clients.kube_waits (watch streams). The mapping of HTTP statuses lives in
tkeflow.clients.errors; this module knows the kubernetes client's own exception types.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pydantic
import urllib3
from kubernetes.client import exceptions as kube_exceptions

from tkeflow import errors
from tkeflow.clients import errors as client_errors

# What the kubernetes client can raise: the API's answers, its own argument checks (pydantic in
# client 37), and urllib3/socket failures underneath.
THIRD_PARTY_ERRORS: tuple[type[BaseException], ...] = (
    kube_exceptions.OpenApiException,
    json.JSONDecodeError,  # a 200 whose body is not JSON
    urllib3.exceptions.HTTPError,
    pydantic.ValidationError,
    OSError,
)


def translate(exc: BaseException, what: str) -> errors.TkeflowError:
    """The tkeflow error for a kubernetes-client exception raised while doing ``what``."""
    if client_errors.is_cert_verify_failure(exc):  # a wrong CA does not fix itself: permanent
        return errors.PermanentError(
            f"{what} failed: the API server's certificate does not verify against the kubeconfig's CA",
            code="TLSVerifyFailed",
        )
    if isinstance(exc, kube_exceptions.ApiException):
        if not exc.status:  # the client's own transport failure
            return client_errors.from_connection_error(exc, what=what)
        return client_errors.from_kube_api_error(exc.status, exc.reason, exc.body, what=what)
    if isinstance(exc, json.JSONDecodeError):
        return errors.TransientError(f"{what} failed: the API server's answer is not JSON ({exc.msg})", code="BadResponse")
    if isinstance(exc, (kube_exceptions.OpenApiException, pydantic.ValidationError)):
        return errors.PermanentError(f"{what}: invalid arguments: {exc}", code="InvalidArguments")
    return client_errors.from_connection_error(exc, what=what)


class GuardedApi:
    """A kubernetes API object whose every method raises tkeflow errors instead of the client's.

    ``_request_timeout`` defaults to the Kube's request timeout, so no call hangs forever.
    """

    def __init__(self, api: Any, group: str, request_timeout_s: float):
        self.raw = api
        self._group = group
        self._timeout = request_timeout_s

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.raw, name)
        if not callable(target) or name.startswith("_"):
            return target
        return guard(target, self._timeout, f"{self._group} {name}")


def guard(fn: Callable[..., Any], request_timeout_s: float, what: str | None = None) -> Callable[..., Any]:
    """``fn`` raising tkeflow errors (``what`` names the call in them), with a default request timeout;
    ``fn`` itself when already guarded (a GuardedApi method)."""
    if hasattr(fn, "unguarded"):
        return fn
    label = what or getattr(fn, "__name__", "kubernetes call")

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", request_timeout_s)
        try:
            return fn(*args, **kwargs)
        except THIRD_PARTY_ERRORS as exc:
            raise translate(exc, label) from exc

    guarded.unguarded = fn  # type: ignore[attr-defined]  # for watches (kube_waits)
    return guarded


def selectors(label_selector: str | None = None, field_selector: str | None = None) -> dict[str, str]:
    """The list/watch keyword arguments for the selectors given (none: no argument at all)."""
    chosen = {}
    if label_selector:
        chosen["label_selector"] = label_selector
    if field_selector:
        chosen["field_selector"] = field_selector
    return chosen


def unguarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The kubernetes client's own function behind a guarded one (Watch needs its docstring)."""
    return getattr(fn, "unguarded", fn)

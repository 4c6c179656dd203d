"""Kubernetes API errors of the cluster twin, one class per real Status reason.

Raised by the Store (twin/kube/store.py), the controllers and the API server handlers;
the HTTP layer renders any of them as a ``v1 Status`` with the apiserver's own reason, code and
message wording, so that the official client's ``ApiException`` and kubectl's messages read exactly
as against a real cluster (the flows branch on ``reason`` and ``code``).
"""

from __future__ import annotations

from typing import Any


def qualified(resource: str) -> str:
    """The resource as the apiserver names it in messages: ``pods``, ``deployments.apps``."""
    return resource


class KubeError(Exception):
    """Base: an error that becomes a ``Status`` object with ``code`` and ``reason``."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(resource: str, name: str | None, **extra: Any) -> dict[str, Any]:
    group = resource.partition(".")[2]
    details: dict[str, Any] = {"kind": resource.partition(".")[0]}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details.update(extra)
    return details


class BadRequest(KubeError):
    code = 400
    reason = "BadRequest"


class Unauthorized(KubeError):
    code = 401
    reason = "Unauthorized"

    def __init__(self, message: str = "Unauthorized"):
        super().__init__(message)


class Forbidden(KubeError):
    """403; e.g. ``namespaces "default" is forbidden: this namespace may not be deleted`` (R-CRT-12)."""

    code = 403
    reason = "Forbidden"

    @classmethod
    def for_object(cls, resource: str, name: str, why: str) -> Forbidden:
        return cls(f'{qualified(resource)} "{name}" is forbidden: {why}', details=_details(resource, name))


class NotFound(KubeError):
    code = 404
    reason = "NotFound"

    def __init__(self, resource: str, name: str, message: str | None = None):
        super().__init__(message or f'{qualified(resource)} "{name}" not found', details=_details(resource, name))
        self.resource = resource
        self.name = name


class MethodNotAllowed(KubeError):
    code = 405
    reason = "MethodNotAllowed"

    def __init__(self, message: str = "the server does not allow this method on the requested resource"):
        super().__init__(message)


class AlreadyExists(KubeError):
    code = 409
    reason = "AlreadyExists"

    def __init__(self, resource: str, name: str):
        super().__init__(f'{qualified(resource)} "{name}" already exists', details=_details(resource, name))
        self.resource = resource
        self.name = name


class Conflict(KubeError):
    """409 on a stale resourceVersion (optimistic concurrency), with the apiserver's wording."""

    code = 409
    reason = "Conflict"

    def __init__(self, resource: str, name: str, why: str | None = None):
        why = why or "the object has been modified; please apply your changes to the latest version and try again"
        super().__init__(
            f'Operation cannot be fulfilled on {qualified(resource)} "{name}": {why}',
            details=_details(resource, name),
        )
        self.resource = resource
        self.name = name


class Gone(KubeError):
    """410 ``Expired``: a watch or continue token older than the event history."""

    code = 410
    reason = "Expired"


class UnsupportedMediaType(KubeError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(KubeError):
    """422: ``Kind "name" is invalid: field: why`` with one cause per field."""

    code = 422
    reason = "Invalid"

    def __init__(self, kind: str, name: str, causes: list[tuple[str, str]], group: str = ""):
        text = ", ".join(f"{field}: {why}" for field, why in causes)
        details: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field} for field, why in causes],
        }
        if group:
            details["group"] = group
        super().__init__(f'{kind} "{name}" is invalid: {text}', details=details)


class TooManyRequests(KubeError):
    """429: used by eviction when a PodDisruptionBudget allows no disruption."""

    code = 429
    reason = "TooManyRequests"

    def __init__(self, message: str, *, causes: list[dict[str, str]] | None = None, retry_after: int = 0):
        details: dict[str, Any] | None = None
        if causes is not None:
            details = {"causes": causes}
        if retry_after:
            details = {**(details or {}), "retryAfterSeconds": retry_after}
        super().__init__(message, details=details)


class InternalError(KubeError):
    code = 500
    reason = "InternalError"

"""The error boundary: Tencent Cloud SDK and kubernetes exceptions become tkeflow's own errors.

Who calls it: tkeflow.clients.tencent and tkeflow.clients.kube wrap every third-party exception with
these functions (``raise from_sdk_error(...) from exc``), so tasks retry by type alone
(tasks/retry.py retries TransientError only) and nothing from the SDKs leaks past the clients
(tests/clients/test_error_boundary.py guards it).

Tencent classification (by the error ``Code``; the part before the first dot is the class):
- transient: RequestLimitExceeded*, InternalError*, ServiceUnavailable*, ClientNetworkError,
  ServerNetworkError (non-200 status, timeouts and connection resets reach us as these two);
- NotFoundError: ResourceNotFound*, and any code whose last part ends in NotFound
  (InvalidInstanceId.NotFound, FailedOperation.ClusterNotFound, InvalidParameter.ClusterNotFound),
  except AuthFailure.SecretIdNotFound (the key, not a resource);
- every other code (AuthFailure*, InvalidParameter*, InvalidParameterValue*, MissingParameter,
  UnknownParameter, LimitExceeded*, UnsupportedOperation*, FailedOperation*, ResourceInsufficient*,
  OperationDenied*, UnauthorizedOperation*, and codes we do not know) is permanent: a retry cannot fix
  a wrong parameter, a missing permission or an exhausted quota.

Kubernetes classification (by HTTP status): 429, 5xx and connection errors transient; 404
NotFoundError; 409 Conflict (stale resourceVersion) ConflictError, a TransientError because re-reading
and retrying fixes it; 409 AlreadyExists AlreadyExistsError, permanent (callers that converge treat it
as success); other 4xx permanent. An eviction refused by a PodDisruptionBudget (429 on the eviction
subresource) is PdbBlocked (``from_eviction_refused``; tkeflow.clients.kube raises it), transient:
drains retry it until their deadline.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

from tkeflow import errors

# Error text from a server can be a whole HTML page (ServerNetworkError carries the raw body):
# keep messages short enough for a log line and a Prefect state message.
MAX_MESSAGE_CHARS = 600

# Throttled: refused before it ran, so the client may resend it at once (tencent.call does, with backoff).
THROTTLED_CODE_CLASS = "RequestLimitExceeded"
TRANSIENT_CODE_CLASSES = frozenset({THROTTLED_CODE_CLASS, "InternalError", "ServiceUnavailable"})
TRANSIENT_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})
NOT_FOUND_CODE_CLASSES = frozenset({"ResourceNotFound"})
# AuthFailure.SecretIdNotFound is about the caller's key, not a resource: never a NotFoundError.
NEVER_NOT_FOUND_CLASSES = frozenset({"AuthFailure", "UnauthorizedOperation"})

# What to change, per permanent code class: the API's message says what is wrong, this says where.
HINTS = {
    "AuthFailure": "check TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY (or the secret block) and the clock",
    "UnauthorizedOperation": "grant the CAM policy for this action to the key's account",
    "InvalidParameter": "fix the parameter named in the message (spec or flow input)",
    "InvalidParameterValue": "fix the value named in the message (spec or flow input)",
    "MissingParameter": "the request lacks a required parameter",
    "UnknownParameter": "the request carries a parameter this action does not take",
    "LimitExceeded": "a quota or limit is reached: raise the quota or ask for fewer resources",
    "ResourceInsufficient": "the zone lacks capacity: choose another zone or instance type",
    "ResourcesSoldOut": "the instance type is sold out: choose another zone or instance type",
    "OperationDenied": "the resource's state or protection forbids this operation",
}


class ConflictError(errors.TransientError):
    """A Kubernetes write lost a resourceVersion race (409 Conflict): re-read and retry."""


class AlreadyExistsError(errors.PermanentError):
    """A Kubernetes create found the object already there (409 AlreadyExists)."""


class PdbBlocked(errors.TransientError):
    """An eviction was refused because a PodDisruptionBudget allows no disruption now (HTTP 429).

    ``.pod`` is ``namespace/name``; the message is the API server's, naming the budget.
    """

    def __init__(self, message: str, *, pod: str, code: str | None = "TooManyRequests"):
        super().__init__(message, code=code)
        self.pod = pod


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ***, cut to MAX_MESSAGE_CHARS."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "..."
    return text


def code_names(code: str | None, name: str) -> bool:
    """Whether a Tencent error code has ``name`` as one of its dotted parts (``FailedOperation.TaskNotFound``)."""
    return name in (code or "").split(".")


def is_throttled(code: str | None) -> bool:
    """Whether a Tencent error code says the request was throttled (RequestLimitExceeded*)."""
    return (code or "").split(".", 1)[0] == THROTTLED_CODE_CLASS


def tencent_error_class(code: str) -> type[errors.TkeflowError]:
    """The tkeflow error type for a Tencent Cloud error code (see the module docstring)."""
    code_class = code.split(".", 1)[0]
    if code in TRANSIENT_CODES or code_class in TRANSIENT_CODE_CLASSES:
        return errors.TransientError
    if code_class in NOT_FOUND_CODE_CLASSES:
        return errors.NotFoundError
    if code_class not in NEVER_NOT_FOUND_CLASSES and code.rsplit(".", 1)[-1].endswith("NotFound"):
        return errors.NotFoundError
    return errors.PermanentError


def from_sdk_error(
    code: str | None, message: Any, request_id: str | None, *, what: str, secrets: tuple[str, ...] = ()
) -> errors.TkeflowError:
    """Build the tkeflow error for one failed SDK call; ``what`` is e.g. ``tke.DescribeClusters``.

    ``secrets`` are scrubbed from the message (the SDK never puts the key there, but a proxy or a
    misbehaving server might echo a header back).
    """
    code = code or "UnknownError"
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    text = f"{what} failed: {message}"
    cls = tencent_error_class(code)
    hint = HINTS.get(code.split(".", 1)[0])
    if hint and cls is not errors.TransientError:
        text = f"{text} ({hint})"
    return cls(scrub(text, secrets), code=code, request_id=request_id)


def _kube_status(body: Any) -> tuple[str | None, str | None]:
    """(reason, message) from a Kubernetes Status body, or (None, None) when it is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip().startswith("{"):
        return None, None
    try:
        status = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(status, dict):
        return None, None
    return status.get("reason"), status.get("message")


# Per-item failures that come as text, not as an error Code (AddExistedInstances' FailedReasons, its
# TimeoutInstanceIds): the words of the transient classes above. The one place such text is matched.
_TRANSIENT_REASON_WORDS = ("internalerror", "requestlimitexceeded", "serviceunavailable", "timeout", "timed out")


def is_transient_reason(reason: str) -> bool:
    """Whether a per-item failure reason (free text from the API) says the failure was transient."""
    text = reason.lower()
    return any(word in text for word in _TRANSIENT_REASON_WORDS)


def from_kube_api_error(status: int | None, reason: str | None, body: Any, *, what: str) -> errors.TkeflowError:
    """Build the tkeflow error for a kubernetes ApiException (HTTP ``status``) during ``what``."""
    status_reason, status_message = _kube_status(body)
    reason = status_reason or reason or "Unknown"
    message = scrub(f"{what} failed: HTTP {status} {reason}: {status_message or reason}", ())
    code = reason
    if not status:  # no HTTP status: the request never got an answer
        return errors.TransientError(message, code=code)
    if status == 404:
        return errors.NotFoundError(message, code=code)
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExistsError(message, code=code)
        return ConflictError(message, code=code)
    if status == 429 or status >= 500:
        return errors.TransientError(message, code=code)
    return errors.PermanentError(message, code=code)


def from_eviction_refused(reason: str | None, body: Any, *, pod: str) -> PdbBlocked:
    """The PdbBlocked for an eviction of ``pod`` (``namespace/name``) refused with HTTP 429."""
    _, message = _kube_status(body)
    return PdbBlocked(f"eviction of {pod} blocked: {message or reason}", pod=pod)


def from_connection_error(exc: BaseException, *, what: str) -> errors.TransientError:
    """A transport failure (refused, reset, timed out, TLS handshake cut) during ``what``."""
    detail = scrub(f"{type(exc).__name__}: {exc}", ())
    return errors.TransientError(f"{what} failed: cannot reach the API server ({detail})", code="ConnectionError")


# --- matches on an exception's text: here only, so that every such guess is in one place --------------

def is_cert_verify_failure(exc: BaseException) -> bool:
    """Whether a TLS certificate check failed anywhere in the chain (urllib3 nests it in .reason, and
    sometimes only its text says CERTIFICATE_VERIFY_FAILED). Who calls it: kube_api.translate."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    return False


def is_key_passphrase_missing(exc: TypeError) -> bool:
    """Whether loading a private key failed for want of its passphrase: cryptography's OpenSSH loader says
    "password-protected" with a TypeError (paramiko's own PasswordRequiredException needs no guess).
    Who calls it: ssh._load_private_key."""
    return "password" in str(exc).lower()

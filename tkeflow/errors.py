"""tkeflow's own error hierarchy.

Clients translate SDK, kubernetes and paramiko exceptions into these at the boundary (chained with
``raise ... from e``) so that tasks decide retries by type alone: a TransientError is worth another
try, a PermanentError never is. Messages never carry secrets.
"""

from __future__ import annotations


class TkeflowError(Exception):
    """Base of every error tkeflow raises on purpose."""

    def __init__(self, message: str, *, code: str | None = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.insert(0, f"[{self.code}]")
        if self.request_id:
            parts.append(f"(RequestId {self.request_id})")
        return " ".join(parts)


class TransientError(TkeflowError):
    """Throttling, internal errors, timeouts, connection resets: retry with backoff."""


class PermanentError(TkeflowError):
    """Parameter, auth, quota, not-found and state errors: retrying is useless; fix the input."""


class NotFoundError(PermanentError):
    """The resource asked for does not exist."""


class ValidationFailed(PermanentError):
    """A flow's validation step found at least one failed check."""


class ApprovalRequired(PermanentError):
    """A destructive step needs an approval the run did not get."""


class PreflightFailed(ValidationFailed):
    """A read-only pre-flight check failed: nothing was changed. ``.report`` holds the check table."""


class ClusterBusy(PermanentError):
    """Another run holds the cluster's lock and did not finish within the lock timeout: nothing was changed."""


class ProcedureUnavailable(PermanentError):
    """A procedure of the registry whose flow module cannot be imported (a broken install or a bug)."""

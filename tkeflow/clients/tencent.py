"""Tencent Cloud API client for the flows: one SDK client per (service, region), rate-limited, and
every SDK error turned into tkeflow's TransientError / PermanentError at this boundary.

Who calls it: tasks/cloud.py builds one ``TencentCloud`` per region for a run (``client_for``) and
the tasks call ``call(service, action, params)`` or the typed describe helpers
(tkeflow/clients/tencent_describe.py, mixed in here). Benchmarks read ``call_counter``.

Choices, and why:
- ``call`` builds the SDK's typed request model from the params dict, so a misspelt parameter fails
  here, before any call, with ``UnknownParameter`` (the SDK itself would drop it silently); it sends
  through the SDK's typed method and returns the typed response as a plain dict
  (``json.loads(resp.to_json_string())``): every documented field is present, ``None`` when absent,
  under the wire's PascalCase names, and tasks need no SDK types.
- Credentials: plain strings passed in (a Prefect Secret block is read by the tasks layer) or the
  SDK's own environment variables TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY. The key is never
  logged and is scrubbed from error messages; request bodies are never logged (CreateCluster may
  carry a login password), and the SDK's own debug logger is kept from propagating for that reason.
- Endpoint: in explicit twin mode, TKEFLOW_TWIN_ENDPOINT (or ``endpoint=``) sends every service to
  that host over plain HTTP (``HttpProfile(protocol="http", endpoint="127.0.0.1:PORT")``), loopback
  addresses only (tkeflow/clients/twin_mode.py); otherwise the real ``<service>.tencentcloudapi.com``
  over HTTPS.
- No SDK retryer and the SDK's region breaker off: tasks retry by error type (tasks/retry.py), and an
  open breaker would send calls to a backup domain, away from a twin endpoint.
"""

from __future__ import annotations

import collections
import functools
import importlib
import json
import logging
import os
import random
import re
import threading
import time
from types import ModuleType
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.abstract_model import AbstractModel
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients import global_rate, twin_mode
from tkeflow.clients.tencent_describe import DescribeMixin

log = logging.getLogger(__name__)

# The SDK logs whole request bodies at DEBUG on this logger; a root logger at DEBUG (Prefect's
# debug mode) would then print login passwords. Keep it to its own handlers only.
logging.getLogger("tencentcloud_sdk_common").propagate = False

ENDPOINT_ENV = twin_mode.ENDPOINT_ENV
SECRET_ID_ENV = "TENCENTCLOUD_SECRET_ID"
SECRET_KEY_ENV = "TENCENTCLOUD_SECRET_KEY"
DEFAULT_REQ_TIMEOUT_S = 30.0
#: RequestLimitExceeded* (client_errors.is_throttled) is retried right here, a few times with backoff and
#: jitter: the request was refused before it ran, and retrying the call is cheaper than restarting a task
#: of many calls.
#: At most 3 by default: with the task's retries (tasks/retry.py) one call is sent at most
#: (task retries + 1) x (THROTTLE_RETRIES + 1) times, a product tasks/retry.py bounds.
THROTTLE_RETRIES = min(9, max(0, int(os.environ.get("TKEFLOW_THROTTLE_RETRIES", "3"))))  # 0 to 9
THROTTLE_BACKOFF_S = float(os.environ.get("TKEFLOW_THROTTLE_BACKOFF_S", "0.2"))
_throttle_pause = threading.Event()  # never set: an interruptible wait, not a sleep

# service -> (SDK client class, models module); versions: tke 2018-05-25, cvm and vpc 2017-03-12, dc 2018-04-10;
# "tke2022" is TKE's 2022-05-01 API (same service, newer version: DescribeGPUInfo, R-GPU-2).
# Imported on first use (``sdk_service``): a process that calls only TKE (a fleet's child run, started
# once per cluster) does not pay for importing the VPC and CVM packages' models at start.
# The `dc` package (R-NET-4, direct connect tunnels) is tencentcloud-sdk-python-dc, maybe not installed.
SERVICES: dict[str, tuple[str, str]] = {
    "tke": ("tencentcloud.tke.v20180525", "TkeClient"),
    "tke2022": ("tencentcloud.tke.v20220501", "TkeClient"),
    "cvm": ("tencentcloud.cvm.v20170312", "CvmClient"),
    "vpc": ("tencentcloud.vpc.v20170312", "VpcClient"),
    "dc": ("tencentcloud.dc.v20180410", "DcClient"),
}
# Services reached through the common package's generic CommonClient (service, API version): their
# per-service SDK package is not installed (Auto Scaling's, tencentcloud-sdk-python-autoscaling, R-AS-5).
# No request model checks their parameters: each action's allowed parameters are listed here instead.
COMMON_SERVICES: dict[str, str] = {"as": "2018-04-19"}
COMMON_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    ("as", "DescribeScalingPolicies"): frozenset({"AutoScalingPolicyIds", "Filters", "Limit", "Offset"}),
}


@functools.cache
def sdk_service(service: str) -> tuple[type, ModuleType] | None:
    """(SDK client class, models module) of a service of SERVICES, imported now; None if not installed."""
    package, client_class = SERVICES[service]
    try:
        client_module = importlib.import_module(f"{package}.{service.removesuffix('2022')}_client")
        models = importlib.import_module(f"{package}.models")
    except ImportError:  # pragma: no cover - depends on the installation; sdk_client then names the package
        return None
    return getattr(client_module, client_class), models


class CallCounter:
    """Thread-safe count of API calls per ``service.Action`` (every attempt, failed ones too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


# Process-wide, for benchmarks ("API calls per node"); each TencentCloud also keeps its own.
call_counter = CallCounter()


def _endpoint_profile(endpoint: str | None, req_timeout: float) -> HttpProfile:
    """HTTP profile for the twin (``host:port``, ``http://host:port``) or the real HTTPS domains."""
    if not endpoint:
        return HttpProfile(reqTimeout=req_timeout)
    protocol = "http"
    if "://" in endpoint:
        protocol, endpoint = endpoint.split("://", 1)
    if protocol != "https":  # plain HTTP carries passwords in clear: the twin on this machine only
        twin_mode.require_loopback(endpoint, "the cloud endpoint")
    # The SDK puts the endpoint in the Host header verbatim: no scheme, no path.
    return HttpProfile(protocol=protocol, endpoint=endpoint.rstrip("/"), reqTimeout=req_timeout)


def _credential(secret_id: str | None, secret_key: str | None) -> credential.Credential:
    secret_id = secret_id or os.environ.get(SECRET_ID_ENV)
    secret_key = secret_key or os.environ.get(SECRET_KEY_ENV)
    if not secret_id or not secret_key:
        raise errors.PermanentError(
            f"no Tencent Cloud credentials: set {SECRET_ID_ENV} and {SECRET_KEY_ENV}, "
            "or pass them from a Prefect Secret block",
            code="AuthFailure.MissingCredentials",
        )
    try:
        return credential.Credential(secret_id, secret_key)
    except TencentCloudSDKException as exc:
        # The SDK's message names the problem (empty, spaces), never the key itself.
        raise errors.PermanentError(
            f"invalid Tencent Cloud credentials: {exc.message}", code=exc.code or "InvalidCredential"
        ) from None


def _scrubbed(exc: TencentCloudSDKException, secrets: tuple[str, ...]) -> TencentCloudSDKException:
    """A copy of an SDK exception whose message has ``secrets`` scrubbed (to chain, never the original)."""
    message = exc.message.decode("utf-8", "replace") if isinstance(exc.message, bytes) else str(exc.message)
    return TencentCloudSDKException(exc.code, client_errors.scrub(message, secrets), exc.requestId)


_TYPE_LINE = re.compile(r":type (\w+): ([^\n]+)")
_CLASS_REF = re.compile(r"models\.(\w+)`")


@functools.lru_cache(maxsize=None)
def _model_fields(model_cls: type, models: ModuleType) -> dict[str, type | None]:
    """Field name -> nested model class (or None for scalars), from the SDK model's docstring.

    The SDK exposes nested types only in ``__init__`` docstrings (``list of Filter``,
    ``:class:`...models.ClusterBasicSettings```); see research/tencent-sdk.md section 8.
    """
    fields: dict[str, type | None] = {}
    for name, type_text in _TYPE_LINE.findall(model_cls.__init__.__doc__ or ""):
        ref = _CLASS_REF.search(type_text)
        type_name = ref.group(1) if ref else type_text.removeprefix("list of ").strip()
        nested = getattr(models, type_name, None)
        fields[name] = nested if isinstance(nested, type) and issubclass(nested, AbstractModel) else None
    return fields


def _unknown_keys(model_cls: type, models: ModuleType, params: Any, path: str) -> list[str]:
    """Parameter paths the SDK model does not know (the SDK would drop them without a word)."""
    if not isinstance(params, dict):
        return []
    fields = _model_fields(model_cls, models)
    unknown = []
    for key, value in params.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            unknown.append(where)
            continue
        nested = fields[key]
        if nested is None:
            continue
        values = value if isinstance(value, list) else [value]
        for index, item in enumerate(values):
            item_path = f"{where}.{index}" if isinstance(value, list) else where
            unknown += _unknown_keys(nested, models, item, item_path)
    return unknown


class TencentCloud(DescribeMixin):
    """The flows' client for one region: ``call`` plus typed describe helpers.

    Thread-safe: SDK clients are created once per service and shared; the rate limiter is shared by
    every TencentCloud of the same (service, region) in the process.
    """

    def __init__(
        self,
        region: str,
        *,
        secret_id: str | None = None,
        secret_key: str | None = None,
        endpoint: str | None = None,
        req_timeout: float = DEFAULT_REQ_TIMEOUT_S,
        rate_limited: bool = True,
    ):
        self.region = region
        self.endpoint = endpoint if endpoint is not None else twin_mode.endpoint()
        self.req_timeout = req_timeout
        if self.endpoint:
            _endpoint_profile(self.endpoint, req_timeout)  # refuses plain HTTP off this machine, before any call
        self.rate_limited = rate_limited
        self._credential = _credential(secret_id, secret_key)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls = CallCounter()

    def __repr__(self) -> str:  # never the key
        where = self.endpoint or "tencentcloudapi.com"
        return f"TencentCloud(region={self.region!r}, endpoint={where!r})"

    @property
    def secret_id(self) -> str:
        return self._credential.secret_id

    def sdk_client(self, service: str) -> Any:
        """The SDK client for ``service`` in this region, created on first use."""
        if service == "dc" and sdk_service(service) is None:
            raise errors.PermanentError("the `dc` service needs the package tencentcloud-sdk-python-dc: install it "
                                        "(pip install tencentcloud-sdk-python-dc)", code="InvalidService")
        if service not in SERVICES and service not in COMMON_SERVICES:
            raise errors.PermanentError(f"unknown service {service!r}; known: {sorted([*SERVICES, *COMMON_SERVICES])}",
                                        code="InvalidService")
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                profile = ClientProfile(
                    httpProfile=_endpoint_profile(self.endpoint, self.req_timeout),
                    language="en-US",
                    disable_region_breaker=True,
                    retryer=None,
                )
                if service in COMMON_SERVICES:
                    client = CommonClient(service, COMMON_SERVICES[service], self._credential, self.region, profile)
                else:
                    client = sdk_service(service)[0](self._credential, self.region, profile)  # type: ignore[index]
                self._clients[service] = client
            return client

    def _build_request(self, service: str, action: str, params: dict[str, Any]) -> AbstractModel:
        what = f"{service}.{action}"
        _, models = sdk_service(service)  # type: ignore[misc]
        request_cls = getattr(models, action + "Request", None)
        if request_cls is None:
            raise errors.PermanentError(f"{what}: no such action in the SDK", code="InvalidAction")
        request = request_cls()
        unknown = _unknown_keys(request_cls, models, params, "")
        if unknown:
            raise errors.PermanentError(
                f"{what}: unknown parameters {', '.join(unknown)} (misspelt, or not taken by this action)",
                code="UnknownParameter",
            )
        try:
            request.from_json_string(json.dumps(params))
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # the type of the problem only: the SDK's text may quote a parameter's value (a password)
            raise errors.PermanentError(f"{what}: parameters do not fit the request model "
                                        f"({type(exc).__name__})", code="ClientParamsError") from None
        return request

    def _send(self, client: Any, request: AbstractModel | dict[str, Any], service: str, action: str, what: str) -> Any:
        if self.rate_limited:
            global_rate.acquire(service, action, self.region)
        self.calls.add(what)
        call_counter.add(what)
        started = time.monotonic()
        try:
            if isinstance(request, dict):  # a CommonClient: the raw {"Response": {...}}
                response = client.call_json(action, request)["Response"]
            else:
                response = getattr(client, action)(request)
        except TencentCloudSDKException as exc:
            log.debug("%s in %s failed after %.3fs: %s", what, self.region, time.monotonic() - started, exc.code)
            secrets = (self._credential.secret_key,)
            # chained to a scrubbed copy: the SDK's own exception holds the unscrubbed message, which a
            # cause would carry into Prefect's traceback of the failed task (issue 14 item 3)
            raise client_errors.from_sdk_error(
                exc.code, exc.message, exc.requestId, what=what, secrets=secrets
            ) from _scrubbed(exc, secrets)
        log.debug("%s in %s took %.3fs", what, self.region, time.monotonic() - started)
        return response

    def call(self, service: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``action`` of ``service`` (tke, cvm, vpc); return the response as a dict.

        The dict holds every field of the SDK's response model (``None`` when not returned) and
        ``RequestId``. Raises TransientError (retry), NotFoundError or PermanentError.
        """
        client = self.sdk_client(service)
        request = (self._common_request(service, action, params or {}) if service in COMMON_SERVICES
                   else self._build_request(service, action, params or {}))
        what = f"{service}.{action}"
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                response = self._send(client, request, service, action, what)
                break
            except errors.TransientError as exc:
                # A throttled request was refused before it ran, so sending it again cannot do anything
                # twice; other transient faults (InternalError, timeouts) may have run: the task decides.
                if not client_errors.is_throttled(exc.code) or attempt == THROTTLE_RETRIES:
                    raise
                _throttle_pause.wait(THROTTLE_BACKOFF_S * 2**attempt * random.uniform(0.5, 1.5))
        return dict(response) if isinstance(response, dict) else json.loads(response.to_json_string())

    @staticmethod
    def _common_request(service: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """The params of a CommonClient call, refused before any call when not known for the action."""
        known = COMMON_PARAMS.get((service, action))
        if known is None:
            raise errors.PermanentError(f"{service}.{action}: not an action tkeflow calls", code="InvalidAction")
        unknown = sorted(set(params) - known)
        if unknown:
            raise errors.PermanentError(f"{service}.{action}: unknown parameters {', '.join(unknown)} (misspelt, or "
                                        "not taken by this action)", code="UnknownParameter")
        return dict(params)


_cache: dict[tuple[Any, ...], TencentCloud] = {}
_cache_lock = threading.Lock()


def client_for(
    region: str,
    *,
    secret_id: str | None = None,
    secret_key: str | None = None,
    endpoint: str | None = None,
    req_timeout: float = DEFAULT_REQ_TIMEOUT_S,
) -> TencentCloud:
    """The process's TencentCloud for this region, endpoint and credentials (created once, reused).

    Unset arguments fall back to the environment (TKEFLOW_TWIN_ENDPOINT in twin mode, TENCENTCLOUD_SECRET_ID/KEY),
    read at each call, so a test that changes the env gets a fresh client.
    """
    endpoint = endpoint if endpoint is not None else twin_mode.endpoint()
    secret_id = secret_id or os.environ.get(SECRET_ID_ENV)
    secret_key = secret_key or os.environ.get(SECRET_KEY_ENV)
    # The key takes part in the cache key by hash only, so the dict never holds it in clear twice.
    key = (region, endpoint, secret_id, hash(secret_key), req_timeout)
    with _cache_lock:
        cloud = _cache.get(key)
        if cloud is None:
            cloud = _cache[key] = TencentCloud(
                region, secret_id=secret_id, secret_key=secret_key, endpoint=endpoint, req_timeout=req_timeout
            )
        return cloud


def clear_client_cache() -> None:
    """Drop every cached TencentCloud (tests that restart the twin on a new port)."""
    with _cache_lock:
        _cache.clear()

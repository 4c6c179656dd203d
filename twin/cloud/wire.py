"""The cloud twin's HTTP server: Tencent Cloud API 3.0 as the SDK, CommonClient and tccli send it.

Who calls it: the umbrella twin (twin/server.py) starts one ``CloudServer`` per twin.
What it does per request (research/tencent-sdk.md): POST / with JSON or the GET form; TC3 signature
checked; routed by (service from the credential scope, X-TC-Version, X-TC-Action); region checked;
parameters checked against the SDK's models; faults applied; the action run; every reply HTTP 200
with Content-Type exactly ``application/json`` (anything else makes the SDK miss errors) and a
RequestId; the call recorded in the CallLog (twin/cloud/calls.py). Paths under ``/_twin/`` go to the
admin handler the server is given in its constructor (twin/cloud/admin.py's ``AdminRoutes.handle``):
this module does not import the admin routes, which read the same call log and the core.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from twin.cloud import auth, params
from twin.cloud import exceptions as exc
from twin.cloud import handlers  # noqa: F401  (registers every action)
from twin.cloud.calls import CallLog
from twin.cloud.registry import ACTIONS, SERVICES, Action, CloudCore, Ctx, run_effects

log = logging.getLogger(__name__)
#: ``(method, path, query, body) -> (HTTP status, JSON payload)`` for paths under ``/_twin/``.
#: (method, path, query, body, headers) -> (status, payload): the /_twin/ routes (twin/cloud/admin.py).
AdminHandler = Callable[[str, str, str, bytes, Any], tuple[int, Any]]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (kill -9, the crash campaign) resets its connection: as for the
        # cluster APIs (twin/kube/apiserver/server.py), that is logged at debug, not a traceback on stderr.
        log.debug("cloud API connection from %s ended with an error", client_address, exc_info=True)


class CloudServer:
    """One Tencent Cloud API endpoint on 127.0.0.1 serving ``core`` (swappable on reset)."""

    def __init__(self, core: CloudCore, admin: AdminHandler, calls: CallLog, host: str = "127.0.0.1", port: int = 0):
        self.core = core
        self.admin = admin
        self.calls = calls
        handler = type("TwinCloudHandler", (_Handler,), {"cloud": self})
        self.httpd = _Server((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="twin-cloud", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- one API call ----------------------------------------------------------------------------
    def call(self, method: str, query: str, headers: Any, body: bytes) -> dict[str, Any]:
        """The ``Response`` object for one API request (never raises a CloudError)."""
        entry: dict[str, Any] = {"service": None, "region": headers.get("X-TC-Region") or "",
                                 "action": headers.get("X-TC-Action") or "", "params": {},
                                 "mutating": False, "error_code": None,
                                 "at": round(time.time(), 4)}  # arrival: the peak rate per action (fleet benchmark)
        try:
            response = self._call(method, query, headers, body, entry)
        except exc.CloudError as error:
            entry["error_code"] = error.code
            response = {"Error": {"Code": error.code, "Message": error.message}}
        except Exception:  # a twin bug answers as the real API's InternalError, never a dropped connection
            log.exception("twin cloud action %s failed", entry["action"])
            entry["error_code"] = exc.InternalError.code
            response = {"Error": {"Code": exc.InternalError.code, "Message": "An internal error has occurred."}}
        self.calls.record(entry)
        response["RequestId"] = str(uuid.uuid4())
        return response

    def _call(self, method: str, query: str, headers: Any, body: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        world = self.core.world
        signed = auth.verify(method, query, headers, body, {world.secret_id: world.secret_key})
        entry["service"] = signed.service
        action = _route(signed.service, headers.get("X-TC-Version") or "", entry["action"])
        entry["mutating"] = action.mutating
        region = entry["region"]
        if region not in world.regions:
            raise exc.UnsupportedRegion(f"The region `{region}` is not supported.")
        request = _parse(method, query, body, action)
        entry["params"] = redact(request)
        _apply_faults(self.core, action, region)
        ctx = Ctx(self.core, region)
        checked = params.check(SERVICES[action.service][1], f"{action.name}Request", request, action.required)
        if action.locked:
            with world.lock:
                result = action.handler(ctx, checked)
        else:
            result = action.handler(ctx, checked)
        run_effects(ctx.effects)
        return result


# Never kept in the call log (DESIGN: secrets). A parameter whose name holds one of these words
# (Password, PreShareKey, SecretKey, PrivateKey, Token...) is a secret, at any depth.
SECRET_WORDS = ("password", "passwd", "secret", "privatekey", "presharekey", "token", "credential")
REDACTED = "***"


def is_secret_field(name: str) -> bool:
    """Whether a parameter named ``name`` carries a secret (its value never reaches the call log)."""
    normalized = "".join(ch for ch in name.lower() if ch.isalpha())
    return any(word in normalized for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` with every secret field's value replaced, for the call log.

    Any depth, and inside JSON strings too: RunInstancesPara and LaunchConfigurePara are lists of
    JSON-encoded RunInstances requests, whose LoginSettings.Password would otherwise sit in clear.
    """
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_field(str(k)) and v not in (None, "", [], {}) else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return json.dumps(redact(decoded), separators=(",", ":"))
    return value


def _route(service: str, version: str, name: str) -> Action:
    if service not in SERVICES:
        raise exc.InvalidAction(f"The service `{service}` is not served by the twin.")
    if not name:
        raise exc.MissingParameter("The request is missing a required parameter `Action`.")
    key = service if version == SERVICES[service][0] else f"{service}@{version}"
    if key not in SERVICES:
        raise exc.NoSuchVersion(f"The requested version `{version}` of service `{service}` does not exist.")
    action = ACTIONS.get((key, name))
    if action is None:
        raise exc.InvalidAction(f"The action `{name}` of `{service}` is not found or not emulated by the twin.")
    return action


def _parse(method: str, query: str, body: bytes, action: Action) -> dict[str, Any]:
    if method == "GET":
        module = SERVICES[action.service][1]
        return params.coerce_query(module, f"{action.name}Request", dict(parse_qsl(query, keep_blank_values=True)))
    try:
        parsed = json.loads(body or b"{}")
    except ValueError as e:
        raise exc.InvalidParameter("The request body is not valid JSON.") from e
    if not isinstance(parsed, dict):
        raise exc.InvalidParameter("The request body must be a JSON object.")
    return parsed


def _apply_faults(core: CloudCore, action: Action, region: str) -> None:
    fault = core.world.faults.for_action(action.service, action.name)
    if fault.latency_s > 0:
        time.sleep(fault.latency_s)  # the twin's own threads may sleep (STYLE: not outside twin)
    if fault.unauthorized:  # the CAM message of a missing permission (research/tencent-sdk.md: a permanent code)
        raise exc.UnauthorizedOperation(
            f"you are not authorized to perform operation ({action.service}:{action.name})\n"
            f"resource (qcs::{action.service}:{region}:uin/{core.world.uin}:*) has no permission\n")
    if fault.throttle_rate > 0 and core.world.rng.random() < fault.throttle_rate:
        raise exc.RequestLimitExceeded("Your current request times equals to `20` in a second, "
                                       "which exceeds the frequency limit `20` for a second.")
    if fault.error_rate > 0 and core.world.rng.random() < fault.error_rate:
        raise exc.InternalError("An internal error has occurred. Retry your request.")


class _Handler(BaseHTTPRequestHandler):
    cloud: CloudServer
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's requests session reuses the connection
    timeout = 30  # an idle keep-alive connection's thread ends after this many seconds
    disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add 40 ms

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("twin cloud: " + format, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n" + data)  # headers and body in one write: one syscall, no Nagle wait
        self.flush_headers()

    def _serve(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        if path.startswith("/_twin/"):
            status, payload = self.cloud.admin(self.command, path, query, body, self.headers)
            self._reply(status, payload)
            return
        if path != "/":
            self._reply(200, {"Response": {"Error": {"Code": "InvalidAction", "Message": f"No API at {path}."},
                                           "RequestId": str(uuid.uuid4())}})
            return
        self._reply(200, {"Response": self.cloud.call(self.command, query, self.headers, body)})

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

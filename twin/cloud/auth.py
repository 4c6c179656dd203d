"""TC3-HMAC-SHA256 verification, exactly as the SDK signs (research/tencent-sdk.md section 1).

Who calls it: the wire layer (server.py) on every API request, before routing. It returns the
service named in the credential scope, which routes the call (CVM and VPC share a version string).
Headers are taken as sent: tccli with ``--endpoint http://127.0.0.1:PORT`` signs a Host header that
carries the scheme, and so it is verified with it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from twin.cloud import exceptions as exc

MAX_SKEW_S = 300  # the real API refuses a timestamp more than 5 minutes off


@dataclass(frozen=True)
class Signed:
    secret_id: str
    service: str
    date: str


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> tuple[str, dict[str, str]]:
    algorithm, _, rest = value.partition(" ")
    fields = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    if algorithm != "TC3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise exc.InvalidAuthorization("The Authorization header is malformed or uses an unsupported algorithm.")
    return algorithm, fields


def verify(method: str, query: str, headers: Mapping[str, str], body: bytes,
           keys: Mapping[str, str], now: float | None = None) -> Signed:
    """Check the request's signature against ``keys`` (SecretId -> SecretKey); raise AuthFailure.*."""
    algorithm, fields = parse_authorization(headers.get("Authorization") or "")
    scope = fields["Credential"].split("/")
    if len(scope) != 4 or scope[3] != "tc3_request":
        raise exc.InvalidAuthorization("The credential scope of the Authorization header is malformed.")
    secret_id, date, service, _ = scope
    if secret_id not in keys:
        raise exc.SecretIdNotFound("The SecretId is not found, please ensure that your SecretId is correct.")
    timestamp = headers.get("X-TC-Timestamp") or ""
    if not timestamp.isdigit():
        raise exc.MissingParameter("The request is missing a required parameter `Timestamp`.")
    if abs((now if now is not None else time.time()) - int(timestamp)) > MAX_SKEW_S:
        raise exc.SignatureExpire("Signature expired. Timestamp and server time differ by more than 5 minutes.")
    if headers.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD":
        payload = b"UNSIGNED-PAYLOAD"
    else:
        payload = body if method == "POST" else b""
    payload_hash = hashlib.sha256(payload).hexdigest()  # hashed once, whichever header form matches
    for lower in (False, True):  # the spec lowercases header values (x-tc-action); the Python SDK signs them as sent
        canonical = "\n".join([method, "/", query if method == "GET" else "",
                               _canonical_headers(headers, fields["SignedHeaders"], lower),
                               fields["SignedHeaders"], payload_hash])
        string_to_sign = "\n".join([algorithm, timestamp, f"{date}/{service}/tc3_request",
                                    hashlib.sha256(canonical.encode()).hexdigest()])
        if hmac.compare_digest(signature(keys[secret_id], date, service, string_to_sign), fields["Signature"]):
            return Signed(secret_id, service, date)
    raise exc.SignatureFailure("The provided credentials could not be validated. Please check your signature is correct.")


def _canonical_headers(headers: Mapping[str, str], signed: str, lower: bool) -> str:
    lines = []
    for name in signed.split(";"):
        value = (headers.get(name) or "").strip()
        lines.append(f"{name.lower()}:{value.lower() if lower else value}\n")
    return "".join(lines)

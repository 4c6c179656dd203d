"""Request bodies in Kubernetes' protobuf encoding, decoded into the JSON-shaped dicts the twin stores.

Why: client-go's typed clients (kubectl >= 1.31 ``kubectl create namespace|deployment|configmap|...``)
send ``application/vnd.kubernetes.protobuf`` bodies and do not fall back to JSON on 415, so an
apiserver that only reads JSON breaks those commands. Responses stay JSON (clients accept both).

What: the envelope (magic ``k8s\\0`` + runtime.Unknown{typeMeta, raw}) and, per kind, a schema of the
fields kubectl's generators set, by protobuf field number (the wire contract of k8s.io/api). Fields
outside the schemas are skipped; Go zero values (empty strings, 0, false) are dropped as JSON's
omitempty would, except for pointer fields where 0 means something (replicas, backoffLimit, ...).
Not emulated: kinds other than those listed in ``KINDS`` (415 UnsupportedMediaType names them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twin.kube import errors

MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, str, Any]]  # field number -> (json name, kind, sub-schema)

META: Schema = {1: ("name", "str", None), 2: ("generateName", "str", None), 3: ("namespace", "str", None),
                11: ("labels", "map", None), 12: ("annotations", "map", None), 14: ("finalizers", "strs", None)}
SELECTOR: Schema = {1: ("matchLabels", "map", None), 2: ("matchExpressions", "msgs", {
    1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "strs", None)})}
RESOURCES: Schema = {1: ("limits", "qmap", None), 2: ("requests", "qmap", None)}
CONTAINER: Schema = {
    1: ("name", "str", None), 2: ("image", "str", None), 3: ("command", "strs", None), 4: ("args", "strs", None),
    5: ("workingDir", "str", None),
    6: ("ports", "msgs", {1: ("name", "str", None), 2: ("hostPort", "int", None), 3: ("containerPort", "int", None),
                          4: ("protocol", "str", None), 5: ("hostIP", "str", None)}),
    7: ("env", "msgs", {1: ("name", "str", None), 2: ("value", "str", None)}),
    8: ("resources", "msg", RESOURCES), 14: ("imagePullPolicy", "str", None),
}
POD_SPEC: Schema = {
    2: ("containers", "msgs", CONTAINER), 3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "int0", None), 6: ("dnsPolicy", "str", None), 7: ("nodeSelector", "map", None),
    8: ("serviceAccountName", "str", None), 10: ("nodeName", "str", None), 11: ("hostNetwork", "bool", None),
    19: ("schedulerName", "str", None),
    22: ("tolerations", "msgs", {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("value", "str", None),
                                 4: ("effect", "str", None), 5: ("tolerationSeconds", "int0", None)}),
}
TEMPLATE: Schema = {1: ("metadata", "msg", META), 2: ("spec", "msg", POD_SPEC)}
RULES = (2, ("rules", "msgs", {1: ("verbs", "strs", None), 2: ("apiGroups", "strs", None), 3: ("resources", "strs", None),
                               4: ("resourceNames", "strs", None), 5: ("nonResourceURLs", "strs", None)}))
BINDING: Schema = {
    1: ("metadata", "msg", META),
    2: ("subjects", "msgs", {1: ("kind", "str", None), 2: ("apiGroup", "str", None), 3: ("name", "str", None),
                             4: ("namespace", "str", None)}),
    3: ("roleRef", "msg", {1: ("apiGroup", "str", None), 2: ("kind", "str", None), 3: ("name", "str", None)}),
}


def _object(spec: Schema | None = None, **extra: tuple[int, tuple[str, str, Any]]) -> Schema:
    schema: Schema = {1: ("metadata", "msg", META)}
    if spec is not None:
        schema[2] = ("spec", "msg", spec)
    for number, field in extra.values():
        schema[number] = field
    return schema


KINDS: dict[str, Schema] = {
    "Namespace": _object({1: ("finalizers", "strs", None)}),
    "ConfigMap": _object(data=(2, ("data", "map", None)), immutable=(4, ("immutable", "bool", None))),
    "ServiceAccount": _object(automount=(4, ("automountServiceAccountToken", "bool", None))),
    "Pod": _object(POD_SPEC),
    "Deployment": _object({1: ("replicas", "int0", None), 2: ("selector", "msg", SELECTOR), 3: ("template", "msg", TEMPLATE),
                           4: ("strategy", "msg", {1: ("type", "str", None)}), 5: ("minReadySeconds", "int", None),
                           6: ("revisionHistoryLimit", "int0", None), 7: ("paused", "bool", None),
                           9: ("progressDeadlineSeconds", "int0", None)}),
    "Job": _object({1: ("parallelism", "int0", None), 2: ("completions", "int0", None),
                    3: ("activeDeadlineSeconds", "int0", None), 4: ("selector", "msg", SELECTOR),
                    5: ("manualSelector", "bool", None), 6: ("template", "msg", TEMPLATE), 7: ("backoffLimit", "int0", None),
                    8: ("ttlSecondsAfterFinished", "int0", None)}),
    "PodDisruptionBudget": _object({1: ("minAvailable", "ios", None), 2: ("selector", "msg", SELECTOR),
                                    3: ("maxUnavailable", "ios", None)}),
    "Service": _object({1: ("ports", "msgs", {1: ("name", "str", None), 2: ("protocol", "str", None), 3: ("port", "int", None),
                                              4: ("targetPort", "ios", None), 5: ("nodePort", "int", None)}),
                        2: ("selector", "map", None), 3: ("clusterIP", "str", None), 4: ("type", "str", None)}),
    "Role": _object(rules=RULES),
    "ClusterRole": _object(rules=RULES),
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise errors.BadRequest("protobuf body truncated")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            yield number, buf[pos:pos + length]
            pos += length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4  # fixed64/fixed32: no k8s field we read uses them
        else:
            raise errors.BadRequest(f"protobuf wire type {wire_type} is not supported")


def _pair(raw: bytes) -> tuple[str, bytes]:
    entry = dict(fields(raw))
    key, value = entry.get(1, b""), entry.get(2, b"")
    return (key.decode() if isinstance(key, bytes) else str(key)), (value if isinstance(value, bytes) else b"")


def _int_or_string(raw: bytes) -> int | str:
    parts = dict(fields(raw))
    if parts.get(1) == 1:
        value = parts.get(3, b"")
        return value.decode() if isinstance(value, bytes) else str(value)
    value = parts.get(2, 0)
    return value if isinstance(value, int) else 0


def decode_message(schema: Schema, buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in fields(buf):
        if number not in schema:
            continue
        name, kind, sub = schema[number]
        if isinstance(value, int):
            if kind == "bool" and value:
                out[name] = True
            elif kind == "int0" or (kind == "int" and value):
                out[name] = value - (1 << 64) if value >= 1 << 63 else value
            continue
        if kind == "str" and value:
            out[name] = value.decode()
        elif kind == "strs":
            out.setdefault(name, []).append(value.decode())
        elif kind in ("map", "qmap"):
            key, raw = _pair(value)
            text: int | bytes = dict(fields(raw)).get(1, b"") if kind == "qmap" else raw  # Quantity{string: 1}
            out.setdefault(name, {})[key] = text.decode() if isinstance(text, bytes) else str(text)
        elif kind == "msg":
            out[name] = decode_message(sub, value)
        elif kind == "msgs":
            out.setdefault(name, []).append(decode_message(sub, value))
        elif kind == "ios":
            out[name] = _int_or_string(value)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as a JSON-shaped object; 415 for kinds the twin cannot read."""
    if not body.startswith(MAGIC):
        raise errors.BadRequest("protobuf body without the k8s envelope")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(envelope.get(1, b"")))  # type: ignore[arg-type]
    api_version = type_meta.get(1, b"").decode()  # type: ignore[union-attr]
    kind = type_meta.get(2, b"").decode()  # type: ignore[union-attr]
    schema = KINDS.get(kind)
    if schema is None:
        raise errors.UnsupportedMediaType(
            f"the twin reads protobuf bodies only for {', '.join(sorted(KINDS))}; send {kind} as application/json"
        )
    obj = decode_message(schema, envelope.get(2, b""))  # type: ignore[arg-type]
    return {"apiVersion": api_version, "kind": kind, **obj}

"""Checks request parameters against the official SDK's own model classes.

Who calls it: the wire layer (server.py) for every action, before the backend runs, and the TKE backend
for the JSON strings inside CreateCluster.RunInstancesPara (checked as CVM RunInstancesRequest).
How: the field names are the models' ``_Name`` attributes; the types come from the ``:type Name:``
lines of each model's ``__init__`` docstring ("str", "list of Filter", ":class:`...models.X`").
The schema of a model is built once and cached, so the check costs a dict walk per request.
Errors, with the parameter's path as the real API names it (``Filters.0.Name``):
UnknownParameter, MissingParameter, InvalidParameterValue.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from twin.cloud import exceptions as exc

_TYPE_LINE = re.compile(r":type (\w+): ([^\n]+)")
_SCALARS = {"str": str, "int": int, "bool": bool, "float": float}


@dataclass(frozen=True)
class FieldType:
    scalar: str | None  # "str" | "int" | "bool" | "float" for scalars and lists of scalars
    model: str | None  # model class name for nested objects and lists of them
    is_list: bool


Schema = dict[str, FieldType]


@functools.lru_cache(maxsize=None)
def model_schema(module: ModuleType, class_name: str) -> Schema:
    """Field name -> FieldType of ``module.class_name`` (cached per model class)."""
    cls = getattr(module, class_name)
    documented = dict(_TYPE_LINE.findall(cls.__init__.__doc__ or ""))
    schema: Schema = {}
    for attr in vars(cls()):
        name = attr[1:]
        schema[name] = _parse_type(documented.get(name, "str").strip())
    return schema


def _parse_type(text: str) -> FieldType:
    is_list = text.startswith("list of ")
    base = text[len("list of "):] if is_list else text
    if base.startswith(":class:"):
        base = base.rstrip("`").rsplit(".", 1)[-1]
    if base in _SCALARS:
        return FieldType(base, None, is_list)
    return FieldType(None, base, is_list)


def check(module: ModuleType, class_name: str, params: dict[str, Any], required: tuple[str, ...] = (),
          prefix: str = "") -> dict[str, Any]:
    """Validate ``params`` for ``class_name``; returns them with str-typed numbers coerced to str.

    ``required`` lists dotted paths enforced as MissingParameter (``ClusterBasicSettings.VpcId``).
    """
    if not isinstance(params, dict):
        raise exc.InvalidParameterValue(f"The value of parameter `{prefix or 'request'}` must be an object.")
    checked = _check_object(module, class_name, params, prefix)
    for path in required:
        if _lookup(checked, path) in (None, "", []):
            raise exc.MissingParameter(f"The request is missing a required parameter `{prefix}{path}`.")
    return checked


def _lookup(params: dict[str, Any], path: str) -> Any:
    value: Any = params
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _check_object(module: ModuleType, class_name: str, params: dict[str, Any], prefix: str) -> dict[str, Any]:
    schema = model_schema(module, class_name)
    out: dict[str, Any] = {}
    for name, value in params.items():
        path = f"{prefix}{name}"
        field = schema.get(name)
        if field is None:
            raise exc.UnknownParameter(f"The parameter `{path}` is not recognized.")
        if value is None:
            continue
        out[name] = _check_value(module, field, value, path)
    return out


def _check_value(module: ModuleType, field: FieldType, value: Any, path: str) -> Any:
    if field.is_list:
        if not isinstance(value, list):
            raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected a list.")
        item = FieldType(field.scalar, field.model, False)
        return [_check_value(module, item, v, f"{path}.{i}") for i, v in enumerate(value)]
    if field.model is not None:
        if not hasattr(module, field.model):
            return value  # a type the SDK does not ship: accept as sent
        if not isinstance(value, dict):
            raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected an object.")
        return _check_object(module, field.model, value, f"{path}.")
    return _check_scalar(field.scalar or "str", value, path)


def _check_scalar(kind: str, value: Any, path: str) -> Any:
    bad = exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected {kind}.")
    if kind == "str":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad
        return value if isinstance(value, str) else str(value)  # VPC's Offset/Limit are str; ints accepted
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    return value


def coerce_query(module: ModuleType, class_name: str, flat: dict[str, str]) -> dict[str, Any]:
    """The GET form: ``Filters.0.Values.1=x`` strings -> nested params typed by the model schema."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _typed(module, class_name, tree, "")


def _typed(module: ModuleType, class_name: str, tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    schema = model_schema(module, class_name)
    out: dict[str, Any] = {}
    for name, value in tree.items():
        field = schema.get(name)
        if field is None:
            raise exc.UnknownParameter(f"The parameter `{prefix}{name}` is not recognized.")
        out[name] = _typed_value(module, field, value, f"{prefix}{name}")
    return out


def _typed_value(module: ModuleType, field: FieldType, value: Any, path: str) -> Any:
    if field.is_list:
        if not isinstance(value, dict) or not all(k.isdigit() for k in value):
            raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected a list.")
        item = FieldType(field.scalar, field.model, False)
        return [_typed_value(module, item, value[k], f"{path}.{k}") for k in sorted(value, key=int)]
    if field.model is not None:
        if not isinstance(value, dict):
            raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected an object.")
        return _typed(module, field.model, value, f"{path}.")
    return _from_text(field.scalar or "str", value, path)


def _from_text(kind: str, value: Any, path: str) -> Any:
    if not isinstance(value, str):
        raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected {kind}.")
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError as e:
        raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected {kind}.") from e
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise exc.InvalidParameterValue(f"The value type of parameter `{path}` is invalid: expected bool.")
        return value.lower() == "true"
    return value

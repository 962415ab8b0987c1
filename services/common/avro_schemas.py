"""Avro schemas derived from the wire models' JSON Schemas (one source of truth).

The derivation is mechanical, so a change to a pydantic wire model changes both published
forms at once:

- ``string`` (any format, ``const``, ``enum``) → ``string``; ``integer`` → ``long``;
  ``number`` → ``double``; ``boolean`` → ``boolean``.
- money (``number`` or decimal ``string``) → ``["string", "double"]``: a decimal string keeps
  its digits exactly, as in the JSON form.
- optional (``anyOf [T, null]``) → ``["null", T]`` with default null; a non-null default is
  kept as the Avro default.
- an object → a record named after its model, defined once and referenced by name after.
- a discriminated union of objects (``iot.reading/1``, the records of ``api.batch/1``) → one
  record holding every variant's fields; a field not in every variant becomes optional. Avro
  decoding then yields the variant's fields plus nulls for the others', which the event
  types ignore like any unknown field.

Record names follow ``<kind with _>_v<major>`` in namespace ``scout.events``
(``pos.transaction/1`` → ``scout.events.pos_transaction_v1``): :func:`kind_of_avro` reverses
it, which is how bronze and silver know the event kind of an Avro record without a
``schema`` field.
"""

from __future__ import annotations

import re
from typing import Any

NAMESPACE = "scout.events"
_AVRO_NAME = re.compile(r"^(?P<kind>[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*)_v(?P<major>\d+)$")
_PRIMITIVES = {"string": "string", "integer": "long", "number": "double", "boolean": "boolean",
               "null": "null"}  # fmt: skip


def record_name(kind: str) -> str:
    """``pos.transaction/1`` → ``pos_transaction_v1``."""
    name, major = kind.split("/")
    return f"{name.replace('.', '_')}_v{major}"


def kind_of_avro(schema: Any) -> str | None:
    """The event kind an Avro schema (parsed JSON) names, or None."""
    if isinstance(schema, list):  # a top-level union: the first named record decides
        return next((k for k in map(kind_of_avro, schema) if k is not None), None)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    name = str(schema.get("name", "")).rsplit(".", 1)[-1]
    match = _AVRO_NAME.match(name)
    if match is None:
        return None
    return f"{match['kind'].replace('_', '.')}/{match['major']}"


def avro_schema_for(kind: str, json_schema: dict[str, Any]) -> dict[str, Any]:
    """The Avro record schema of one wire kind, from its JSON Schema."""
    converter = _Converter(json_schema.get("$defs", {}))
    root = converter.record(record_name(kind), json_schema)
    root["namespace"] = NAMESPACE
    root["doc"] = f"{kind} (derived from schemas/events; see services/common/avro_schemas.py)"
    return root


class _Converter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.defined: set[str] = set()

    def resolve(self, node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return name, self.defs[name]
        return None, node

    def variants(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.resolve(v)[1] for v in node.get("oneOf", node.get("anyOf", []))]

    def record(self, name: str, node: dict[str, Any]) -> dict[str, Any]:
        if name in self.defined:
            raise ValueError(f"record {name} defined twice")
        self.defined.add(name)
        objects = self.variants(node) if ("oneOf" in node or "anyOf" in node) else [node]
        fields: dict[str, list[dict[str, Any]]] = {}
        required_everywhere: set[str] | None = None
        for variant in objects:
            required = set(variant.get("required", []))
            required_everywhere = (
                required if required_everywhere is None else required_everywhere & required
            )
            for field_name, prop in variant.get("properties", {}).items():
                seen = fields.setdefault(field_name, [])
                if prop not in seen:
                    seen.append(prop)
        everywhere = required_everywhere or set()
        merged = len(objects) > 1
        out = [
            self.field(n, props[0] if len(props) == 1 else _union(props), n in everywhere, merged)
            for n, props in fields.items()
        ]
        return {"type": "record", "name": name, "fields": out}

    def field(self, name: str, prop: dict[str, Any], required: bool, merged: bool
              ) -> dict[str, Any]:  # fmt: skip
        avro_type = self.type_of(name, prop)
        nullable = isinstance(avro_type, list) and "null" in avro_type
        field: dict[str, Any] = {"name": name, "type": avro_type}
        if required:
            return field
        if "default" in prop and prop["default"] is not None and not merged:
            field["default"] = prop["default"]
            return field
        if not nullable:
            avro_type = ["null", *(avro_type if isinstance(avro_type, list) else [avro_type])]
        elif avro_type[0] != "null":
            avro_type = ["null", *[t for t in avro_type if t != "null"]]
        field["type"] = avro_type
        field["default"] = None
        return field

    def type_of(self, name: str, prop: dict[str, Any]) -> Any:
        ref_name, node = self.resolve(prop)
        if ref_name is not None:
            return ref_name if ref_name in self.defined else self.record(ref_name, node)
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            kinds = [self.resolve(b)[1] for b in branches]
            if len([k for k in kinds if k.get("type") != "null"]) > 1 and all(
                k.get("type") in ("number", "string", "null") for k in kinds
            ):
                money = ["string", "double"]
                return ["null", *money] if any(k.get("type") == "null" for k in kinds) else money
            has_null = any(k.get("type") == "null" for k in kinds)
            if len(kinds) > 1 and not has_null and all(k.get("type") == "object" for k in kinds):
                return self.record(_pascal(name), node)
            out: list[Any] = []
            for branch in branches:
                t = self.type_of(name, branch)
                out.append(t)
            if "null" in out:
                out = ["null", *[t for t in out if t != "null"]]
            return out
        json_type = node.get("type")
        if json_type == "array":
            return {"type": "array", "items": self.type_of(name + "_item", node.get("items", {}))}
        if json_type == "object":
            if "properties" in node:
                return self.record(_pascal(name), node)
            return {"type": "map", "values": "string"}
        if "const" in node or "enum" in node:
            return "string"
        if isinstance(json_type, str) and json_type in _PRIMITIVES:
            return _PRIMITIVES[json_type]
        raise ValueError(f"no Avro type for field {name}: {node}")


def _union(props: list[dict[str, Any]]) -> dict[str, Any]:
    """One field typed differently by the variants: any of their types."""
    if all("const" in p for p in props):
        return {"type": "string"}
    branches: list[dict[str, Any]] = []
    for prop in props:
        for branch in prop.get("anyOf", [prop]):
            if branch not in branches:
                branches.append(branch)
    return {"anyOf": branches}


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)

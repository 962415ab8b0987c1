"""Payloads for the contract fuzz test, derived from the published event schemas.

:func:`payloads` walks ``schemas/events/*.schema.json`` (the producers' contract, generated
from the event types) into hypothesis strategies for schema-valid instances, then mutates a
share of them the way real producers get it wrong: wrong JSON types, values at and past
every bound the schema states, missing and extra fields, unknown or missing ``schema``,
broken API envelopes, deep nesting, numbers no double or ``numeric`` holds, strings
PostgreSQL cannot store, bytes that are not UTF-8 JSON. Seeded: the same seed gives the same
payloads, so a failure reproduces.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning

from services.common.kafka import Topics
from services.common.schema_commands import default_schema_dir

STORES = ("S-F1", "S-F2", "S-F3")
SKUS = ("P-F1", "P-F2", "P-F3")
_NOW = datetime.now(UTC).replace(microsecond=0)

# Values of every JSON kind, and the extremes that decoders and columns disagree on.
_WEIRD_SCALARS: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63, 2**70, -(2**70), 1.5, -0.0, 1e308, 1e-30,
    "", " ", "x" * 300, "é", "😀", "\u202e", "1e5", "12.345", "-0", "NaN", "∞",
    Decimal("1e400"), Decimal("0.001"), Decimal("0.005"), Decimal("99999999.995"),
    Decimal("1e10"), [], {}, [1, 2], {"a": 1},
]  # fmt: skip
_TIMES = [
    "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1969-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z", "2026-02-30T10:00:00+08:00", "2026-11-25T10:15:00",
    "2026-11-25T10:15:00+24:00", "2026-11-25 10:15:00+08:00", "1700000000", "",
]  # fmt: skip


def _schemas() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(Path(default_schema_dir()).glob("*.schema.json")):
        doc = json.loads(path.read_text())
        docs[doc["title"]] = doc
    return docs


def _instance(schema: dict[str, Any], root: dict[str, Any], name: str = "") -> Any:
    """A strategy for instances of one JSON Schema node (the subset pydantic emits)."""
    if "$ref" in schema:
        return _instance(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, name)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_instance(s, root, name) for s in schema[key]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: _instance(v, root, k) for k, v in props.items() if k in required},
            optional={k: _instance(v, root, k) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(_instance(schema.get("items", {}), root, name), min_size=low,
                        max_size=min(schema.get("maxItems", 4), low + 3))  # fmt: skip
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31 - 1)
        return st.one_of(st.integers(low, min(high, low + 5)), st.integers(low, high))
    if kind == "number":
        return _number(schema)
    if kind == "null":
        return st.none()
    return st.none()


def _string(schema: dict[str, Any], name: str) -> Any:
    if name == "store_id":
        return st.sampled_from(STORES) | st.text(min_size=1, max_size=8)
    if name == "sku":
        return st.sampled_from(SKUS) | st.text(min_size=1, max_size=8)
    if schema.get("format") == "date-time":
        recent = st.integers(-5 * 86400, 60).map(lambda s: _NOW + timedelta(seconds=s))
        anywhen = st.datetimes(datetime(1970, 1, 2), datetime(2099, 12, 30))
        offset = st.sampled_from([0, 8, -5, 14, -12]).map(lambda h: timezone(timedelta(hours=h)))
        return st.tuples(recent | anywhen.map(lambda d: d.replace(tzinfo=UTC)), offset).map(
            lambda t: t[0].astimezone(t[1]).isoformat()
        )
    if schema.get("format") == "date":
        return st.dates(_NOW.date() - timedelta(days=10), _NOW.date()).map(str)
    if "pattern" in schema:
        return st.from_regex(re.compile(schema["pattern"]), fullmatch=True)
    if "IANA" in schema.get("description", ""):
        return st.sampled_from(["Asia/Manila", "UTC", "America/New_York", "Mars/Olympus"])
    high = min(schema.get("maxLength", 40), 40)
    return st.text(min_size=schema.get("minLength", 0), max_size=high)


def _number(schema: dict[str, Any]) -> Any:
    low = Decimal(str(schema.get("minimum", -1e8)))
    high = Decimal(str(schema.get("maximum", 1e8)))
    typical = st.decimals(max(low, Decimal("0.01")), min(high, Decimal(5000)), places=2)
    edges = st.sampled_from([low, high, Decimal("0.005"), Decimal("0.004"), Decimal("1e-3")])
    return st.one_of(typical, typical, edges).map(lambda d: float(d) if d == d else 0.0)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def _mutated(draw: Any, instance: Any) -> Any:
    """Change one or more places of a valid instance the way producers get it wrong."""
    value = json.loads(json.dumps(instance))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        leaf = path[-1]
        action = draw(st.sampled_from(["weird", "time", "drop", "deep", "extra", "bound"]))
        if action == "weird":  # a copy: a later change may go into it
            parent[leaf] = copy.deepcopy(draw(st.sampled_from(_WEIRD_SCALARS)))
        elif action == "time":
            parent[leaf] = draw(st.sampled_from(_TIMES))
        elif action == "drop" and isinstance(parent, dict):
            del parent[leaf]
        elif action == "deep":  # the last change: walking it again would recurse too deep
            parent[leaf] = _deep(draw(st.sampled_from([5, 33, 40, 600])))
            break
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = copy.deepcopy(draw(st.sampled_from(_WEIRD_SCALARS)))
        elif action == "bound" and isinstance(parent[leaf], int | float):
            parent[leaf] = draw(st.sampled_from([2**31, 10**6 + 1, 10**12, -1, 0, 1e11]))
    return value


def _dumps(value: Any) -> bytes:
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o) if o.is_finite() and abs(o) < Decimal("1e300") else str(o)
        raise TypeError(type(o))

    text = json.dumps(value, default=default)
    return re.sub(r'"(1E\+400|1e400)"', "1e400", text).encode()


_BYTES_FAULTS = [
    b"", b"\xff\xfe\x00garbage", b"\xef\xbb\xbf{}", b"[1, 2, 3]", b'"just a string"', b"null",
    b'{"schema": "pos.transaction/1", "x": NaN}', b'{"a": "\\u0000"}', b'{"a": "\\ud800"}',
    b'{"a": 1e200000}', b'{"schema": "pos.transaction/1"', b"{" * 3000, b'{"a": 1}' * 2,
    b'{"schema": "pos.transaction/1", "event_id": "\\udfff"}',
    b'{"schema": "iot.reading/1", "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
]  # fmt: skip


@st.composite
def _payload(
    draw: Any, topics: Topics, docs: dict[str, dict[str, Any]]
) -> tuple[str, bytes, bytes]:
    title = draw(st.sampled_from(sorted(docs)))
    doc = docs[title]
    instance = draw(_instance(doc, doc))
    choice = draw(st.integers(0, 99))
    if choice < 30:
        value = _dumps(instance)  # valid by the schema (context rules may still refuse it)
    elif choice < 85:
        value = _dumps(draw(_mutated(instance)))
    elif choice < 92 and title == "api.batch/1":
        envelope = dict(instance)
        envelope.update(draw(st.sampled_from([
            {"schema": "api.batch/2"}, {"schema": None}, {"records": "nope"}, {"records": []},
            {"records": [1, "two", None, {"type": "transaction"}]},
        ])))  # fmt: skip
        if envelope.get("schema") is None:
            envelope.pop("schema")
        value = _dumps(envelope)
    else:
        value = draw(st.sampled_from(_BYTES_FAULTS))
    kind = title.split("/")[0]
    topic = {
        "pos.transaction": topics.pos, "api.batch": topics.api, "iot.reading": topics.iot,
        "master.store": topics.master_stores, "master.product": topics.master_products,
    }[kind]  # fmt: skip
    if draw(st.integers(0, 19)) == 7:  # now and then on another source topic
        topic = draw(st.sampled_from([topics.pos, topics.api, topics.iot]))
    key = draw(st.sampled_from(STORES)).encode()
    return topic, key, value


def payloads(topics: Topics, count: int, fuzz_seed: int) -> list[tuple[str, bytes, bytes]]:
    """``count`` fuzzed (topic, key, value) records, the same for the same seed."""
    docs = _schemas()
    out: list[tuple[str, bytes, bytes]] = []

    @seed(fuzz_seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(_payload(topics, docs))
    def collect(record: tuple[str, bytes, bytes]) -> None:
        out.append(record)

    with warnings.catch_warnings():
        # Raised when another thread of the process touches the global random state while a
        # payload is drawn; the payloads do not depend on it.
        warnings.simplefilter("ignore", HypothesisDeprecationWarning)
        collect()
    return out[:count]

"""Raw payload → typed event or a precise :class:`Rejection`. Pure: no I/O, no clock.

The parser checks what one record says on its own (JSON, schema, types, amounts, quantity,
time zone). Rules that need context — the store is known, the time is not in the future,
the items add up to the total, the SKU exists — belong to silver.

JSON numbers are read as ``Decimal`` exactly (``125.50`` stays ``Decimal('125.50')``);
``NaN`` and ``Infinity`` are not JSON and are refused.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.common.events import rules
from services.common.events.models import (
    ApiBatch,
    CampaignSpend,
    DeviceReading,
    Event,
    LineItem,
    ProductRecord,
    Rejection,
    SourceSystem,
    StoreRecord,
    Transaction,
)
from services.common.events.wire import (
    IOT_KINDS,
    ApiBatchEnvelope,
    ApiCampaignSpendRecord,
    ApiTransactionRecord,
    IotSaleV1,
    MasterProductV1,
    MasterStoreV1,
    PosTransactionV1,
    PosTransactionV2,
)

_POS_SCHEMAS: dict[str, type[PosTransactionV1 | PosTransactionV2]] = {
    "pos.transaction/1": PosTransactionV1,
    "pos.transaction/2": PosTransactionV2,
}
_IOT_SCHEMAS = ("iot.reading/1",)
_MASTER_SCHEMAS: dict[str, type[MasterStoreV1 | MasterProductV1]] = {
    "master.store/1": MasterStoreV1,
    "master.product/1": MasterProductV1,
}
_API_RECORD_TYPES: dict[str, type[ApiTransactionRecord | ApiCampaignSpendRecord]] = {
    "transaction": ApiTransactionRecord,
    "campaign_spend": ApiCampaignSpendRecord,
}
_CENT_FRACTION = Decimal("0.0001")
_T = TypeVar("_T")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Decode UTF-8 JSON with numbers as ``Decimal`` (raises ``ValueError`` when not JSON)."""
    text = bytes(raw).decode("utf-8") if not isinstance(raw, str) else raw
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def load_json_object(raw: object) -> dict[str, Any] | Rejection:
    """The JSON object in ``raw`` (bytes, or an already decoded value), or why not. A decoded
    string is a JSON string, not JSON text to decode again."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Rejection(rules.NOT_OBJECT, None, f"JSON value is {_json_kind(raw)}")
    try:
        value = load_json(raw)
    except UnicodeDecodeError:
        return Rejection(rules.NOT_JSON, None, "payload is not UTF-8")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return Rejection(rules.NOT_JSON, None, f"payload is not JSON: {_short(str(exc))}")
    except RecursionError:
        return Rejection(rules.NOT_JSON, None, "payload nests too deeply")
    if not isinstance(value, dict):
        return Rejection(rules.NOT_OBJECT, None, f"JSON value is {_json_kind(value)}")
    return value


def parse_record(
    raw: object,
    source_system: SourceSystem | str,
    *,
    batch_id: str | None = None,
    partner: str | None = None,
) -> Event | Rejection:
    """Parse one bronze record of ``source_system``.

    ``pos``: ``pos.transaction/1`` or ``/2`` → :class:`Transaction` (v2 upcast).
    ``api``: one record of an API batch (``"type"``: ``transaction`` or ``campaign_spend``,
    no ``schema``); ``batch_id`` and ``partner`` come from the envelope.
    ``iot``: ``iot.reading/1``: ``sale`` → :class:`Transaction` (``source_system='iot'``),
    ``footfall`` / ``temperature`` → :class:`DeviceReading`.
    """
    obj = load_json_object(raw)
    if isinstance(obj, Rejection):
        return obj
    try:
        if source_system == "pos":
            return _parse_pos(obj)
        if source_system == "api":
            return _parse_api_record(obj, batch_id, partner)
        if source_system == "iot":
            return _parse_iot(obj)
    except ValidationError as exc:
        return rejection_from_error(exc)
    raise ValueError(f"unknown source system {source_system!r}; expected pos, api or iot")


def parse_master(raw: object) -> StoreRecord | ProductRecord | Rejection:
    """Parse a ``master.store/1`` or ``master.product/1`` record."""
    obj = load_json_object(raw)
    if isinstance(obj, Rejection):
        return obj
    model = _pick(obj, "schema", _MASTER_SCHEMAS)
    if isinstance(model, Rejection):
        return model
    try:
        wire = model.model_validate(obj)
    except ValidationError as exc:
        return rejection_from_error(exc)
    if isinstance(wire, MasterStoreV1):
        return _construct(StoreRecord, **_fields(wire, StoreRecord))
    return _construct(ProductRecord, **_fields(wire, ProductRecord))


def parse_api_batch(raw: object) -> ApiBatch | Rejection:
    """Parse an ``api.batch/1`` envelope; its records are left raw (see ``parse_record``)."""
    obj = load_json_object(raw)
    if isinstance(obj, Rejection):
        return obj
    model = _pick(obj, "schema", {"api.batch/1": ApiBatchEnvelope})
    if isinstance(model, Rejection):
        return model
    try:
        wire = model.model_validate(obj)
    except ValidationError as exc:
        return rejection_from_error(exc)
    return _construct(
        ApiBatch,
        batch_id=wire.batch_id,
        partner=wire.partner,
        sent_at=wire.sent_at,
        records=tuple(wire.records),
    )


def rejection_from_error(exc: ValidationError) -> Rejection:
    """Map the first pydantic error to a rule and the dotted path of its field."""
    error = exc.errors(include_url=False, include_input=True)[0]
    field = ".".join(str(part) for part in error["loc"]) or None
    kind = error["type"]
    if kind in rules.ALL:
        rule = kind
    elif kind == "missing":
        rule = rules.MISSING_FIELD
    elif kind.endswith(("_type", "_parsing")):
        if error.get("input") is None:
            return Rejection(rules.MISSING_FIELD, field, "required field is null")
        rule = rules.WRONG_TYPE
    else:
        rule = rules.INVALID_VALUE
    return Rejection(rule, field, error["msg"])


def transaction_from_json(data: bytes | str) -> Transaction:
    """Rebuild a :class:`Transaction` from ``Transaction.model_dump_json()`` output."""
    return Transaction.model_validate_json(data)


def event_to_json(event: Event) -> bytes:
    """The internal event as JSON bytes (money as decimal strings, timestamps with offset)."""
    return event.model_dump_json().encode()


def _parse_pos(obj: dict[str, Any]) -> Transaction | Rejection:
    model = _pick(obj, "schema", _POS_SCHEMAS)
    if isinstance(model, Rejection):
        return model
    wire = model.model_validate(obj)
    return _upcast(wire, "pos")


def _parse_api_record(
    obj: dict[str, Any], batch_id: str | None, partner: str | None
) -> Transaction | CampaignSpend | Rejection:
    if "type" not in obj and ("schema" in obj or "records" in obj):
        # A whole envelope that bronze could not split (its schema is not a known batch
        # schema, or it is malformed): judge it as an envelope.
        envelope = parse_api_batch(obj)
        if isinstance(envelope, Rejection):
            return envelope
        return Rejection(rules.INVALID_VALUE, "records", "API batch envelope was not split")
    model = _pick(obj, "type", _API_RECORD_TYPES, unknown_rule=rules.INVALID_VALUE)
    if isinstance(model, Rejection):
        return model
    wire = model.model_validate(obj)
    if isinstance(wire, ApiCampaignSpendRecord):
        return _construct(
            CampaignSpend, **_fields(wire, CampaignSpend), batch_id=batch_id, partner=partner
        )
    return _upcast(wire, "api", batch_id=batch_id, partner=partner)


def _parse_iot(obj: dict[str, Any]) -> Transaction | DeviceReading | Rejection:
    schema = _pick(obj, "schema", dict.fromkeys(_IOT_SCHEMAS, True))
    if isinstance(schema, Rejection):
        return schema
    model = _pick(obj, "kind", IOT_KINDS, unknown_rule=rules.INVALID_VALUE)
    if isinstance(model, Rejection):
        return model
    wire = model.model_validate(obj)
    if isinstance(wire, IotSaleV1):
        unit_price = wire.amount / wire.qty
        if unit_price.as_tuple().exponent < -4:  # type: ignore[operator]
            unit_price = unit_price.quantize(_CENT_FRACTION)
        return _construct(
            Transaction,
            source_system="iot",
            event_id=wire.event_id,
            store_id=wire.store_id,
            terminal_id=wire.device_id,
            occurred_at=wire.occurred_at,
            gross_amount=wire.amount,
            discount_amount=Decimal(0),
            net_amount=wire.amount,
            items=(_construct(LineItem, sku=wire.sku, qty=wire.qty, unit_price=unit_price),),
        )
    return _construct(DeviceReading, **_fields(wire, DeviceReading))


def _upcast(
    wire: PosTransactionV1 | PosTransactionV2 | ApiTransactionRecord,
    source_system: SourceSystem,
    *,
    batch_id: str | None = None,
    partner: str | None = None,
) -> Transaction:
    """Every transaction version → the one internal shape (v1 total = gross = net)."""
    if isinstance(wire, PosTransactionV2):
        gross, discount = wire.gross_amount, wire.discount_amount
    else:
        gross, discount = wire.total_amount, Decimal(0)
    values = _fields(wire, Transaction)
    values.update(
        source_system=source_system,
        gross_amount=gross,
        discount_amount=discount,
        net_amount=gross - discount,
        items=tuple(wire.items),
        batch_id=batch_id,
        partner=partner,
    )
    return _construct(Transaction, **values)


_M = TypeVar("_M", bound=BaseModel)


def _construct(model: type[_M], **values: Any) -> _M:
    """``model.model_construct(**values)`` for values already validated, at a third of its
    cost: pydantic's matches every field against aliases, which the internal models have
    none of. tests/unit/test_events.py holds the two equal for every internal model."""
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", {**_defaults(model), **values})
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults of ``model``'s optional fields (immutable values: no factories)."""
    if model.__pydantic_post_init__ or model.__private_attributes__:
        raise TypeError(f"{model.__name__} needs model_construct (post-init or private state)")
    defaults = {}
    for name, info in model.model_fields.items():
        if info.alias is not None or info.default_factory is not None:
            raise TypeError(f"{model.__name__}.{name} needs model_construct")
        if not info.is_required():
            defaults[name] = info.default
    return defaults


def _fields(wire: BaseModel, target: type[BaseModel]) -> dict[str, Any]:
    """The attributes of ``wire`` that ``target`` also has (validated values, no copy)."""
    return {name: getattr(wire, name) for name in _shared_fields(type(wire), target)}


@functools.cache
def _shared_fields(wire: type[BaseModel], target: type[BaseModel]) -> tuple[str, ...]:
    # Computed once per pair of models: a hasattr() miss on a pydantic model raises and
    # catches an AttributeError, which was a fifth of silver's CPU time.
    return tuple(name for name in target.model_fields if name in wire.model_fields)


def _pick(
    obj: dict[str, Any], key: str, choices: dict[str, _T], *, unknown_rule: str = ""
) -> _T | Rejection:
    """The choice named by ``obj[key]`` (the schema, an API record type, an IoT kind)."""
    value = obj.get(key)
    if value is None:
        return Rejection(rules.MISSING_FIELD, key, f"field {key!r} is required")
    if not isinstance(value, str):
        return Rejection(rules.WRONG_TYPE, key, f"{key!r} must be a string")
    choice = choices.get(value)
    if choice is None:
        if not unknown_rule:
            return Rejection(rules.UNKNOWN_SCHEMA, key, f"unknown schema {_short(value)!r}")
        expected = ", ".join(choices)
        return Rejection(unknown_rule, key, f"{key} {_short(value)!r} is not one of {expected}")
    return choice


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"

"""The wire payloads of CONTRACTS §2, one pydantic model per ``schema`` kind and version.

They validate what producers send (unknown extra fields are ignored) and are the source of
``schemas/events/*.schema.json`` (``scout schemas export``). The parser turns them into
the internal models of :mod:`services.common.events.models`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.common.events import rules
from services.common.events.models import Customer, LineItem
from services.common.events.types import (
    API_RECORDS_MAX,
    ITEMS_MAX,
    Currency,
    Day,
    Footfall,
    Id,
    NonNegativeMoney,
    PositiveMoney,
    Quantity,
    Temperature,
    Text,
    Timestamp,
    TimezoneName,
    Version,
)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class _TransactionFields(_Wire):
    event_id: Id
    store_id: Id
    terminal_id: Text | None = None
    occurred_at: Timestamp
    currency: Currency = "PHP"
    payment_method: Text | None = None
    customer: Customer | None = None
    items: list[LineItem] = Field(min_length=1, max_length=ITEMS_MAX)
    campaign_id: Text | None = None
    version: Version = 1
    notes: Text | None = None


class PosTransactionV1(_TransactionFields):
    """``pos.transaction/1``: ``total_amount`` is both gross and net."""

    model_config = ConfigDict(title="pos.transaction/1")
    schema_: Literal["pos.transaction/1"] = Field(alias="schema")
    total_amount: PositiveMoney


class PosTransactionV2(_TransactionFields):
    """``pos.transaction/2``: ``gross_amount`` and ``discount_amount`` (net = gross - discount)."""

    model_config = ConfigDict(title="pos.transaction/2")
    schema_: Literal["pos.transaction/2"] = Field(alias="schema")
    gross_amount: PositiveMoney
    discount_amount: NonNegativeMoney = Decimal(0)

    @field_validator("discount_amount")
    @classmethod
    def _net_is_positive(cls, discount: Decimal, info: ValidationInfo) -> Decimal:
        # The one place of "a sale's net amount is positive" for v2: net = gross - discount.
        gross = info.data.get("gross_amount")
        if gross is not None and discount >= gross:
            raise PydanticCustomError(
                rules.NON_POSITIVE_AMOUNT, "net amount (gross - discount) must be positive"
            )
        return discount


class ApiTransactionRecord(_TransactionFields):
    """A transaction inside an API batch: the fields of ``pos.transaction/1``, no schema."""

    type: Literal["transaction"]
    total_amount: PositiveMoney


class ApiCampaignSpendRecord(_Wire):
    """Campaign spend inside an API batch."""

    type: Literal["campaign_spend"]
    campaign_id: Id
    store_id: Id
    date: Day
    spend: PositiveMoney
    channel: Text | None = None


ApiRecord = Annotated[ApiTransactionRecord | ApiCampaignSpendRecord, Field(discriminator="type")]


class ApiBatchEnvelope(_Wire):
    """The batch envelope as parsed: records stay raw, each becomes one bronze row."""

    schema_: Literal["api.batch/1"] = Field(alias="schema")
    batch_id: Id
    partner: Id
    sent_at: Timestamp
    records: list[Any] = Field(max_length=API_RECORDS_MAX)


class ApiBatchV1(ApiBatchEnvelope):
    """``api.batch/1`` as documented (records typed), for the JSON Schema."""

    model_config = ConfigDict(title="api.batch/1")
    records: list[ApiRecord] = Field(max_length=API_RECORDS_MAX)


class _IotFields(_Wire):
    schema_: Literal["iot.reading/1"] = Field(alias="schema")
    device_id: Id
    store_id: Id
    occurred_at: Timestamp


class IotFootfallV1(_IotFields):
    """People entering through the door since the last reading."""

    kind: Literal["footfall"]
    value: Footfall


class IotTemperatureV1(_IotFields):
    """Fridge temperature in °C."""

    kind: Literal["temperature"]
    value: Temperature


class IotSaleV1(_IotFields):
    """An unattended sale (vending, self-checkout)."""

    kind: Literal["sale"]
    event_id: Id
    sku: Id
    qty: Quantity
    amount: PositiveMoney


IotReadingV1 = Annotated[IotFootfallV1 | IotTemperatureV1 | IotSaleV1, Field(discriminator="kind")]
IOT_KINDS: dict[str, type[_IotFields]] = {
    "footfall": IotFootfallV1,
    "temperature": IotTemperatureV1,
    "sale": IotSaleV1,
}


class MasterStoreV1(_Wire):
    """``master.store/1``."""

    model_config = ConfigDict(title="master.store/1")
    schema_: Literal["master.store/1"] = Field(alias="schema")
    store_id: Id
    name: Text
    region: Text
    city: Text
    timezone: TimezoneName
    opened_on: Day | None = None


class MasterProductV1(_Wire):
    """``master.product/1``."""

    model_config = ConfigDict(title="master.product/1")
    schema_: Literal["master.product/1"] = Field(alias="schema")
    sku: Id
    name: Text
    brand: Text
    category: Text
    unit_price: PositiveMoney


# Every wire schema, by its "schema" value, as something that can produce a JSON Schema.
WIRE_SCHEMAS: dict[str, TypeAdapter[Any]] = {
    "pos.transaction/1": TypeAdapter(PosTransactionV1),
    "pos.transaction/2": TypeAdapter(PosTransactionV2),
    "api.batch/1": TypeAdapter(ApiBatchV1),
    "iot.reading/1": TypeAdapter(IotReadingV1),
    "master.store/1": TypeAdapter(MasterStoreV1),
    "master.product/1": TypeAdapter(MasterProductV1),
}


def json_schema_for(schema: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one wire payload kind/version."""
    doc = WIRE_SCHEMAS[schema].json_schema(by_alias=True, mode="validation")
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://scout.example/schemas/events/{schema_file_name(schema)}",
        **doc,
    }
    doc.setdefault("title", schema)
    return doc


def schema_file_name(schema: str) -> str:
    """``pos.transaction/1`` → ``pos.transaction.v1.schema.json``."""
    kind, _, major = schema.partition("/")
    return f"{kind}.v{major}.schema.json"

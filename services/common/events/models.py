"""The internal event shapes every layer works with, whatever the source and version.

``Transaction`` is the one shape for ``pos.transaction/1`` and ``/2`` (upcast), API batch
transaction records and IoT unattended sales. The models are frozen and validate the same
way as the wire models, so an event rebuilt from its own JSON (``model_dump_json`` →
``model_validate_json``) is equal to the original, with the exact ``Decimal`` and offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.common.events import rules
from services.common.events.types import (
    ITEMS_MAX,
    MONEY_MAX,
    Currency,
    Day,
    Id,
    Money,
    NonNegativeMoney,
    PositiveMoney,
    Quantity,
    Text,
    Timestamp,
    TimezoneName,
    Version,
)

SOURCE_SYSTEMS = ("pos", "api", "iot")
SourceSystem = Literal["pos", "api", "iot"]


class LineItem(BaseModel):
    """One line of a basket. A free line (``unit_price`` 0, a promotion) is a normal line."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: Id
    qty: Quantity
    unit_price: NonNegativeMoney

    @model_validator(mode="after")
    def _line_amount_in_domain(self) -> LineItem:
        if self.unit_price * self.qty > MONEY_MAX:
            raise PydanticCustomError(rules.INVALID_VALUE, f"line amount beyond {MONEY_MAX}")
        return self


class Customer(BaseModel):
    """The customer of a transaction. ``id`` and the free-text fields are personal data:
    they are modelled only so silver can prove it drops them (it stores a pseudonym)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Text | None = None
    type: Literal["new", "regular"] | None = None
    name: Text | None = None
    phone: Text | None = None
    email: Text | None = None
    note: Text | None = None


class Transaction(BaseModel):
    """A sale, from any source and schema version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_system: SourceSystem
    event_id: Id
    store_id: Id
    terminal_id: Text | None = None
    occurred_at: Timestamp
    currency: Currency = "PHP"
    gross_amount: PositiveMoney
    discount_amount: NonNegativeMoney = Decimal(0)
    net_amount: PositiveMoney
    payment_method: Text | None = None
    customer: Customer | None = None
    items: tuple[LineItem, ...] = Field(min_length=1, max_length=ITEMS_MAX)
    campaign_id: Text | None = None
    version: Version = 1
    batch_id: Text | None = None
    partner: Text | None = None
    notes: Text | None = None  # free text from the source; may hold personal data

    @model_validator(mode="after")
    def _net_is_gross_minus_discount(self) -> Transaction:
        if self.net_amount != self.gross_amount - self.discount_amount:
            raise PydanticCustomError(rules.INVALID_VALUE, "net_amount is not gross - discount")
        return self


class CampaignSpend(BaseModel):
    """Money a partner spent on a campaign for one store and day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: Id
    store_id: Id
    date: Day
    spend: PositiveMoney
    channel: Text | None = None
    batch_id: Text | None = None
    partner: Text | None = None


class DeviceReading(BaseModel):
    """A footfall count or a temperature (°C) from an in-store device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: Id
    store_id: Id
    kind: Literal["footfall", "temperature"]
    value: Money
    occurred_at: Timestamp


class StoreRecord(BaseModel):
    """A store from the store master."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    store_id: Id
    name: Text
    region: Text
    city: Text
    timezone: TimezoneName
    opened_on: Day | None = None


class ProductRecord(BaseModel):
    """A product from the product master."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: Id
    name: Text
    brand: Text
    category: Text
    unit_price: PositiveMoney


class ApiBatch(BaseModel):
    """The envelope of an API batch. ``records`` are kept as received (one bronze row each)
    and parsed one by one with ``parse_record(record, "api", batch_id=…, partner=…)``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch_id: Id
    partner: Id
    sent_at: Timestamp
    records: tuple[Any, ...]


@dataclass(frozen=True)
class Rejection:
    """Why a record was not accepted: the rule (see ``rules``), the field path (dotted,
    e.g. ``items.0.qty``; None for the whole record) and a detail without the input."""

    rule: str
    field: str | None
    detail: str


Event = Transaction | CampaignSpend | DeviceReading | StoreRecord | ProductRecord

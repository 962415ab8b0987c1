"""Event contracts (CONTRACTS §2): wire payload models, the internal event shapes, and the
parser that turns a raw record into one of them or a precise rejection.

Layers import from here only::

    from services.common.events import parse_record, Transaction, Rejection, rules

``parse_record`` upcasts every transaction version to :class:`Transaction`; a
:class:`Rejection` names its rule (``rules.ALL``), the field path and a detail that never
echoes the input (payloads may carry personal data).
"""

from __future__ import annotations

from services.common.events import rules
from services.common.events.models import (
    SOURCE_SYSTEMS,
    ApiBatch,
    CampaignSpend,
    Customer,
    DeviceReading,
    Event,
    LineItem,
    ProductRecord,
    Rejection,
    SourceSystem,
    StoreRecord,
    Transaction,
)
from services.common.events.parse import (
    event_to_json,
    load_json,
    load_json_object,
    parse_api_batch,
    parse_master,
    parse_record,
    rejection_from_error,
    transaction_from_json,
)
from services.common.events.types import is_timezone
from services.common.events.wire import WIRE_SCHEMAS, json_schema_for, schema_file_name

__all__ = [
    "SOURCE_SYSTEMS",
    "WIRE_SCHEMAS",
    "ApiBatch",
    "CampaignSpend",
    "Customer",
    "DeviceReading",
    "Event",
    "LineItem",
    "ProductRecord",
    "Rejection",
    "SourceSystem",
    "StoreRecord",
    "Transaction",
    "event_to_json",
    "is_timezone",
    "json_schema_for",
    "load_json",
    "load_json_object",
    "parse_api_batch",
    "parse_master",
    "parse_record",
    "rejection_from_error",
    "rules",
    "schema_file_name",
    "transaction_from_json",
]

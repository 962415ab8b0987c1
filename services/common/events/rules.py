"""The names of the rejection rules: the parser returns them, silver quarantines by them.

These strings are stored in ``silver_quarantine.rule`` and used as metric labels, so they
are part of the pipeline's contract: add new ones, never rename.
"""

from __future__ import annotations

NOT_JSON = "not_json"  # bytes that are not UTF-8 JSON
NOT_OBJECT = "not_object"  # JSON, but not an object
UNKNOWN_SCHEMA = "unknown_schema"  # "schema" names no known kind/version (detail names it)
MISSING_FIELD = "missing_field"  # a required field is absent or null
WRONG_TYPE = "wrong_type"  # a field has the wrong JSON type
NON_POSITIVE_AMOUNT = "non_positive_amount"  # total / gross / amount / spend / price <= 0
INVALID_QUANTITY = "invalid_quantity"  # qty <= 0
INVALID_TIMEZONE = "invalid_timezone"  # store timezone not an IANA zone
INVALID_VALUE = "invalid_value"  # anything else: bad enum, pattern, range, date, offset
# Passed every check, yet a layer could not store or compute it (the database refused it, a
# conversion failed): isolated from its batch and kept, the detail says why. Should stay at 0;
# each one is a gap in the input domain to close (alert ScoutRecordsIsolated).
UNPROCESSABLE = "unprocessable"

ALL = (
    NOT_JSON,
    NOT_OBJECT,
    UNKNOWN_SCHEMA,
    MISSING_FIELD,
    WRONG_TYPE,
    NON_POSITIVE_AMOUNT,
    INVALID_QUANTITY,
    INVALID_TIMEZONE,
    INVALID_VALUE,
    UNPROCESSABLE,
)

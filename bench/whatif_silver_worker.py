"""``scout run silver`` with one change outside silver's own modules, to measure it first.

The profile of silver (see ``bench/results/silver.md``) shows ``parse._fields`` spending
most of its time in ``hasattr(wire, name)``: for a name the wire model lacks, pydantic's
``BaseModel.__getattr__`` raises and formats an AttributeError, once per missing field per
record. Reading the validated values from the instance ``__dict__`` gives the same dict
(the wire models have no properties or computed fields) without the exceptions.

This wrapper swaps that one function in-process and runs the unchanged silver worker under
its own consumer group (``…silver-whatif``); nothing in ``services/`` changes.
Used by ``bench/silver.py --whatif``.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

import services.common.events.parse as parse
import services.silver_enricher.app as silver_app
from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.runner import run_one

_make_app = silver_app.make_app  # type: ignore[attr-defined]


def fields_from_dict(wire: BaseModel, target: type[BaseModel]) -> dict[str, Any]:
    values = wire.__dict__
    return {name: values[name] for name in target.model_fields if name in values}


def make_app(settings: Any, service: str, **config: Any) -> Any:
    return _make_app(settings, f"{service}-whatif", **config)


def main() -> int:
    parse._fields = fields_from_dict
    silver_app.make_app = make_app  # type: ignore[attr-defined]
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return run_one("silver", settings)


if __name__ == "__main__":
    sys.exit(main())

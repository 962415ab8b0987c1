"""``scout run bronze`` with extra Faust settings, to measure tuning before proposing it.

``BENCH_FAUST_CONFIG`` holds a JSON object of Faust settings laid over ``make_app``'s
defaults (e.g. ``{"broker_max_poll_records": 5000}``); nothing in ``services/`` changes.
Used by ``bench/bronze.py --only-writer --faust-config …``.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial

import services.bronze_writer.app as bronze_app
from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.runner import run_one


def main() -> int:
    overrides = json.loads(os.environ.get("BENCH_FAUST_CONFIG", "{}"))
    bronze_app.make_app = partial(bronze_app.make_app, **overrides)  # type: ignore[attr-defined]
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return run_one("bronze", settings)


if __name__ == "__main__":
    sys.exit(main())

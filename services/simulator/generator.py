"""The traffic generator: a deterministic sequence of :class:`SimRecord` for a seed. Pure.

One seeded ``random.Random`` drives every choice, and event times come from a simulated
clock (``config.start`` plus ``index / rate`` seconds for live traffic), never from the wall
clock, so the same config gives byte-identical payloads. Live traffic mixes POS (70 %),
API batches (8 %) and IoT readings (22 %); with ``faults`` = P each record is faulty with
probability P (see :mod:`services.simulator.faults`).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from services.simulator import faults as f
from services.simulator import records as r
from services.simulator.shapes import (
    HOURLY,
    PAYMENT_METHODS,
    PAYMENT_WEIGHTS,
    basket_lines,
    cumulative,
    day_factor,
    popularity_weights,
    quantity,
)
from services.simulator.world import (
    Campaign,
    Store,
    World,
    build_world,
    product_payload,
    store_payload,
)

PH = timezone(timedelta(hours=8), "PHT")  # Asia/Manila has had no DST since 1978
_HOUR_CUM = cumulative(list(HOURLY))
_FAULT_CUM = cumulative([float(w) for w in f.FAULT_WEIGHTS])
_PAY_CUM = cumulative([float(w) for w in PAYMENT_WEIGHTS])
_RECENT_MAX = 512
_BACKFILL_PER_SIZE_PER_DAY = 20


@dataclass(frozen=True)
class SimConfig:
    seed: int
    start: datetime  # the simulated clock at the first live record (timezone-aware)
    rate: float = 1000.0  # live records per second of simulated time
    faults: float = 0.0
    stores: int = 50
    days: int = 0
    products: int = 300
    max_record_bytes: int = 1024 * 1024


class TrafficGenerator:
    """Generates master data, backfill and live traffic for one run (stateful, seeded)."""

    def __init__(self, config: SimConfig) -> None:
        if config.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.config = config
        self.world: World = build_world(random.Random(f"{config.seed}:world"), config.stores,
                                        config.products)  # fmt: skip
        self.rng = random.Random(f"{config.seed}:traffic")
        # Event ids carry the run (seed and start): a second run on the same stack sends new
        # sales, not "corrections" of the first run's; the same seed and start still give the
        # same bytes.
        self._run = hashlib.sha256(
            f"{config.seed}:{config.start.isoformat()}".encode()
        ).hexdigest()[:8]
        self._seq = 0
        self._live = 0
        self._emitted = 0
        self._oversized = 0
        self._recent: list[tuple[bytes, dict[str, Any], bytes]] = []
        self._spend_done: set[tuple[str, str, str]] = set()
        self._start_day = config.start.astimezone(PH).date()
        self._product_cum = popularity_weights(len(self.world.products))
        self._vend_products = [p for p in self.world.products
                               if p.category in ("beverages", "snacks")] or list(
            self.world.products)  # fmt: skip
        self._store_cum: dict[int, list[float]] = {}
        self._campaigns: dict[tuple[str, int], Campaign | None] = {}

    # -- phases -------------------------------------------------------------------------
    def masters(self) -> list[SimRecord]:
        """Store and product master records (without the stores that arrive late)."""
        stores = [self._store_record(s) for s in self.world.stores]
        products = [
            r.SimRecord(r.PRODUCTS, p.sku.encode(), f.dumps(product_payload(p)),
                        "master.product/1", None, (r.SILVER_PRODUCTS,))
            for p in self.world.products
        ]  # fmt: skip
        return stores + products

    def late_masters(self) -> list[SimRecord]:
        """Master records of the stores that transactions referred to before they existed."""
        return [self._store_record(s) for s in self.world.late_stores]

    def _backfill_counts(self) -> Iterator[tuple[int, date, int]]:
        per_day = sum(s.size for s in self.world.stores) * _BACKFILL_PER_SIZE_PER_DAY
        for offset in range(-self.config.days, 0):
            day = self._start_day + timedelta(days=offset)
            yield offset, day, round(per_day * day_factor(day))

    def backfill_total(self) -> int:
        """How many records :meth:`backfill` yields (for a progress line with an ETA)."""
        return sum(count for _, _, count in self._backfill_counts())

    def backfill(self) -> Iterator[SimRecord]:
        """``days`` days of history before the start, day by day, with seasonality."""
        rng = self.rng
        for offset, day, count in self._backfill_counts():
            moments = sorted(
                (int(rng.choices(range(24), cum_weights=_HOUR_CUM)[0]) * 3600
                 + rng.randrange(3600)) * 1_000_000 + rng.randrange(1_000_000)
                for _ in range(count)
            )  # fmt: skip
            midnight = datetime(day.year, day.month, day.day, tzinfo=PH)
            for micros in moments:
                yield self._record(midnight + timedelta(microseconds=micros), offset)

    def live(self, count: int) -> list[SimRecord]:
        """The next ``count`` live records, on the simulated clock."""
        out = []
        start, rate = self.config.start, self.config.rate
        for _ in range(count):
            when = start + timedelta(seconds=self._live / rate)
            self._live += 1
            out.append(self._record(when, 0))
        return out

    # -- one record ---------------------------------------------------------------------
    def _record(self, when: datetime, day_offset: int) -> SimRecord:
        self._emitted += 1
        rng = self.rng
        if self.config.faults and rng.random() < self.config.faults:
            return self._faulty(when, day_offset)
        u = rng.random()
        if u < 0.70:
            store = self._pick_store(day_offset)
            payload = self._transaction(store, when, day_offset)
            value = f.dumps(payload)
            key = store.store_id.encode()
            self._remember(key, payload, value)
            return r.SimRecord(r.POS, key, value, payload["schema"], None,
                               (r.SILVER_TRANSACTIONS,))  # fmt: skip
        if u < 0.78:
            return self._api_batch(when, day_offset, None)
        return self._iot(when, day_offset, None)

    def _faulty(self, when: datetime, day_offset: int) -> SimRecord:
        rng = self.rng
        kind = rng.choices(f.FAULT_KINDS, cum_weights=_FAULT_CUM)[0]
        if kind == "oversized" and self._oversized > self._emitted // 25_000:
            kind = "late"  # they are ~1 MiB each: keep them rare
        if kind in ("duplicate", "correction") and not self._recent:
            kind = "late"
        if kind == "future_timestamp":
            when = max(when, self.config.start)  # future relative to the run, not history
        if kind in f.IOT_FAULTS and rng.random() < 0.2:
            return self._iot(when, day_offset, kind)
        if (kind in f.API_RECORD_FAULTS or kind == "not_json") and rng.random() < 0.15:
            return self._api_batch(when, day_offset, kind)
        return self._faulty_pos(kind, when, day_offset)

    def _faulty_pos(self, kind: str, when: datetime, day_offset: int) -> SimRecord:
        rng = self.rng
        if kind in ("duplicate", "correction"):
            index = rng.randrange(len(self._recent))
            key, payload, value = self._recent[index]
            if kind == "duplicate":
                return r.SimRecord(r.POS, key, value, payload["schema"], kind,
                                   (r.SILVER_DUPLICATE,))  # fmt: skip
            corrected = f.correct(payload, rng)
            value = f.dumps(corrected)
            self._recent[index] = (key, corrected, value)
            return r.SimRecord(r.POS, key, value, corrected["schema"], kind,
                               (r.SILVER_CORRECTION,))  # fmt: skip
        if kind == "unknown_store":
            store = rng.choice(self.world.late_stores)
            payload = self._transaction(store, when, day_offset)
            return r.SimRecord(r.POS, store.store_id.encode(), f.dumps(payload),
                               payload["schema"], kind, (r.UNKNOWN_STORE_THEN_SILVER,))  # fmt: skip
        store = self._pick_store(day_offset)
        payload = self._transaction(store, when, day_offset)
        key, schema = store.store_id.encode(), payload["schema"]
        if kind == "not_json":
            value, outcome = f.not_json(rng, payload)
        elif kind == "not_object":
            value, outcome = f.not_object(rng, payload)
        elif kind == "oversized":
            self._oversized += 1
            value, outcome = f.oversized(payload, self.config.max_record_bytes)
        else:
            bad, outcome = f.corrupt_transaction(rng, kind, payload, event_time=when)
            value = f.dumps(bad)
        return r.SimRecord(r.POS, key, value, schema, kind, (outcome,))

    def _api_batch(self, when: datetime, day_offset: int, fault: str | None) -> SimRecord:
        rng = self.rng
        partner = rng.choice(self.world.partners)
        batch_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        records: list[dict[str, Any]] = []
        outcomes: list[str] = []
        spend = self._campaign_spend(partner, when, day_offset)
        if spend is not None:
            records.append(spend)
            outcomes.append(r.SILVER_CAMPAIGN_SPEND)
        for _ in range(rng.randint(2, 6)):
            store = self._pick_store(day_offset)
            records.append(self._transaction(store, when, day_offset, partner=partner))
            outcomes.append(r.SILVER_TRANSACTIONS)
        if fault is not None and fault != "not_json":
            index = len(records) - 1  # always a transaction record
            records[index], outcomes[index] = f.corrupt_transaction(
                rng, fault, records[index], event_time=when
            )
        inner = tuple(f"api.{rec.get('type')}" for rec in records)
        envelope = {"schema": "api.batch/1", "batch_id": batch_id, "partner": partner,
                    "sent_at": _fmt(when), "records": records}  # fmt: skip
        if fault == "not_json":
            value, outcome = f.not_json(rng, envelope)
            return r.SimRecord(r.API, batch_id.encode(), value, "api.batch/1", fault,
                               (outcome,), inner)  # fmt: skip
        return r.SimRecord(r.API, batch_id.encode(), f.dumps(envelope), "api.batch/1", fault,
                           tuple(outcomes), inner)  # fmt: skip

    def _iot(self, when: datetime, day_offset: int, fault: str | None) -> SimRecord:
        rng = self.rng
        store = self._pick_store(day_offset)
        u = rng.random()
        local = when.astimezone(PH)
        base = {"schema": "iot.reading/1", "store_id": store.store_id}
        if u < 0.55:
            payload = {
                **base,
                "device_id": f"D-{store.store_id}-door",
                "kind": "footfall",
                "value": rng.randint(0, int(3 * store.size * HOURLY[local.hour]) + 1),
            }
            ok = r.SILVER_DEVICE_READINGS  # fmt: skip
        elif u < 0.8:
            payload = {
                **base,
                "device_id": f"D-{store.store_id}-fridge",
                "kind": "temperature",
                "value": round(rng.gauss(4.0, 0.8), 1),
            }
            ok = r.SILVER_DEVICE_READINGS  # fmt: skip
        else:
            product = rng.choice(self._vend_products)
            qty = 1 + (rng.random() < 0.2)
            self._seq += 1
            payload = {
                **base,
                "device_id": f"D-{store.store_id}-vend",
                "kind": "sale",
                "event_id": f"V-{store.store_id}-{self._run}-{self._seq:09d}",
                "sku": product.sku,
                "qty": qty,
                "amount": product.price_centavos * qty / 100,
            }
            ok = r.SILVER_TRANSACTIONS  # fmt: skip
        payload["occurred_at"] = _fmt(when)
        kind = f"iot.{payload['kind']}"
        key = str(payload["device_id"]).encode()
        if fault is None:
            return r.SimRecord(r.IOT, key, f.dumps(payload), kind, None, (ok,))
        if fault == "not_json":
            value, outcome = f.not_json(rng, payload)
        elif fault == "not_object":
            value, outcome = f.not_object(rng, payload)
        else:
            bad, outcome = f.corrupt_iot(rng, fault, payload, event_time=when)
            value = f.dumps(bad)
        return r.SimRecord(r.IOT, key, value, kind, fault, (outcome,))

    # -- payload pieces -----------------------------------------------------------------
    def _transaction(
        self, store: Store, when: datetime, day_offset: int, *, partner: str | None = None
    ) -> dict[str, Any]:
        rng = self.rng
        self._seq += 1
        campaign = self._campaign_of(store.store_id, day_offset)
        if campaign is not None and rng.random() < 0.4:
            campaign = None  # not every shopper in a campaign store responds to it
        lines = basket_lines(rng, campaign is not None)
        products, cum, total = self.world.products, self._product_cum, self._product_cum[-1]
        random = rng.random
        picked = [products[bisect(cum, random() * total)] for _ in range(lines)]
        quantities: dict[str, list[int]] = {}
        for product in picked:
            line = quantities.setdefault(product.sku, [0, product.price_centavos])
            line[0] += quantity(rng, product.max_qty)
        v2 = partner is None and store.pos_version == 2
        gross = sum(q * p for q, p in quantities.values())
        items = [{"sku": sku, "qty": q, "unit_price": f.money_value(p, v2)}
                 for sku, (q, p) in quantities.items()]  # fmt: skip
        terminal = rng.randint(1, store.terminals)
        payload: dict[str, Any] = {
            "event_id": f"{partner or store.store_id}-{self._run}-{self._seq:09d}",
            "store_id": store.store_id,
            "terminal_id": None if partner else f"{store.store_id}-T{terminal}",
            "occurred_at": _fmt(when),
            "currency": "PHP",
        }  # fmt: skip
        if partner is not None:
            payload = {"type": "transaction", **payload, "total_amount": gross / 100}
        elif v2:
            discount = gross * campaign.discount_pct // 100 // 25 * 25 if campaign else 0
            payload = {"schema": "pos.transaction/2", **payload,
                       "gross_amount": f.money_value(gross, True),
                       "discount_amount": f.money_value(discount, True)}  # fmt: skip
        else:
            payload = {"schema": "pos.transaction/1", **payload, "total_amount": gross / 100}
        payload["payment_method"] = (
            "online" if partner else PAYMENT_METHODS[bisect(_PAY_CUM, rng.random() * _PAY_CUM[-1])]
        )
        payload["customer"] = self._customer(store)
        payload["items"] = items
        payload["campaign_id"] = campaign.campaign_id if campaign else None
        payload["version"] = 1
        return payload

    def _customer(self, store: Store) -> dict[str, Any] | None:
        rng = self.rng
        u = rng.random()
        if u < 0.35:
            return None  # walk-in
        if u < 0.8:
            number = rng.randrange(int(40 * store.size) + 10)
            customer = {"id": f"C-{store.store_id}-{number:05d}", "type": "regular"}
            if number % 5 == 0:  # loyalty members registered a mobile number
                customer["phone"] = f"+63917{int(store.store_id[1:]) * 7919 + number:07d}"[:13]
            return customer
        return {"id": f"C-N{self._run}-{self._seq:09d}", "type": "new"}

    def _campaign_spend(self, partner: str, when: datetime, day_offset: int
                        ) -> dict[str, Any] | None:  # fmt: skip
        rng = self.rng
        if rng.random() > 0.3:
            return None
        active = [c for c in self.world.campaigns if c.partner == partner
                  and c.active(day_offset)]  # fmt: skip
        if not active:
            return None
        campaign = rng.choice(active)
        store_id = rng.choice(sorted(campaign.store_ids))
        day = when.astimezone(PH).date().isoformat()
        if (campaign.campaign_id, store_id, day) in self._spend_done:
            return None  # one spend row per campaign, store and day
        self._spend_done.add((campaign.campaign_id, store_id, day))
        return {"type": "campaign_spend", "campaign_id": campaign.campaign_id,
                "store_id": store_id, "date": day, "spend": rng.randint(5, 150) * 100.0,
                "channel": campaign.channel}  # fmt: skip

    def _pick_store(self, day_offset: int) -> Store:
        cum = self._store_cum.get(day_offset)
        if cum is None:
            weights = []
            for store in self.world.stores:
                lift = max((c.lift for c in self.world.campaigns
                            if store.store_id in c.store_ids and c.active(day_offset)),
                           default=1.0)  # fmt: skip
                weights.append(store.size * lift)
            cum = self._store_cum[day_offset] = cumulative(weights)
        return self.world.stores[bisect(cum, self.rng.random() * cum[-1])]

    def _campaign_of(self, store_id: str, day_offset: int) -> Campaign | None:
        """The campaign running in the store that day (the first one, if several)."""
        slot = (store_id, day_offset)
        if slot not in self._campaigns:
            self._campaigns[slot] = next((c for c in self.world.campaigns
                                          if store_id in c.store_ids and c.active(day_offset)),
                                         None)  # fmt: skip
        return self._campaigns[slot]

    def _store_record(self, store: Store) -> SimRecord:
        return r.SimRecord(r.STORES, store.store_id.encode(), f.dumps(store_payload(store)),
                           "master.store/1", None, (r.SILVER_STORES,))  # fmt: skip

    def _remember(self, key: bytes, payload: dict[str, Any], value: bytes) -> None:
        if len(self._recent) < _RECENT_MAX:
            self._recent.append((key, payload, value))
        else:
            self._recent[self._seq % _RECENT_MAX] = (key, payload, value)


SimRecord = r.SimRecord


@lru_cache(maxsize=64)
def _fmt(when: datetime) -> str:
    """RFC 3339 in Manila time (cached: the records of one API batch share their time)."""
    return when.astimezone(PH).isoformat(timespec="microseconds")


def default_start(seed: int | None, now: datetime | None = None) -> datetime:
    """The simulated clock's start when ``--start`` is not given: the current hour (UTC) for
    a seeded run, so two runs with the same seed in the same hour publish identical bytes
    while event times stay close to the wall clock (freshness, future-timestamp checks);
    the current time otherwise."""
    now = now or datetime.now(UTC)
    if seed is None:
        return now
    return now.replace(minute=0, second=0, microsecond=0)


__all__ = ["PH", "SimConfig", "SimRecord", "TrafficGenerator", "default_start"]

"""Master data of the simulated retailer: stores, products, campaigns, partners. Pure.

Stores spread over real Philippine regions and cities (all on ``Asia/Manila``), with a
long-tailed size (a few flagship stores, many small ones: Pareto weights). Products span
the categories of a Philippine convenience / sari-sari assortment, each category with its
own price band, basket quantity and brands. Everything is drawn from one seeded
``random.Random``, so a seed gives the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

TIMEZONE = "Asia/Manila"

# (region, city, relative population weight)
CITIES: tuple[tuple[str, str, float], ...] = (
    ("NCR", "Quezon City", 9.0),
    ("NCR", "Manila", 6.5),
    ("NCR", "Caloocan", 5.0),
    ("NCR", "Makati", 2.5),
    ("NCR", "Taguig", 3.0),
    ("NCR", "Pasig", 2.8),
    ("NCR", "Parañaque", 2.4),
    ("CALABARZON", "Antipolo", 3.0),
    ("CALABARZON", "Dasmariñas", 2.5),
    ("CALABARZON", "Calamba", 2.0),
    ("CALABARZON", "Bacoor", 2.2),
    ("CALABARZON", "Lipa", 1.3),
    ("Central Luzon", "Angeles", 1.6),
    ("Central Luzon", "San Fernando", 1.4),
    ("Central Luzon", "Malolos", 1.1),
    ("Central Luzon", "Olongapo", 1.0),
    ("Central Visayas", "Cebu City", 4.0),
    ("Central Visayas", "Mandaue", 1.5),
    ("Central Visayas", "Lapu-Lapu", 1.6),
    ("Davao Region", "Davao City", 5.0),
    ("Davao Region", "Tagum", 1.1),
    ("Western Visayas", "Iloilo City", 2.0),
    ("Western Visayas", "Bacolod", 2.2),
    ("Northern Mindanao", "Cagayan de Oro", 2.4),
    ("Northern Mindanao", "Iligan", 1.3),
    ("Ilocos", "Laoag", 0.6),
    ("Ilocos", "Vigan", 0.4),
    ("Cordillera", "Baguio", 1.3),
    ("Bicol", "Naga", 0.8),
    ("Bicol", "Legazpi", 0.8),
    ("Eastern Visayas", "Tacloban", 1.0),
    ("Zamboanga Peninsula", "Zamboanga City", 3.0),
    ("SOCCSKSARGEN", "General Santos", 2.6),
)


@dataclass(frozen=True)
class Category:
    name: str
    price_centavos: tuple[int, int]  # price band of one unit
    max_qty: int  # units of one SKU in a basket
    brands: tuple[str, ...]
    items: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("snacks", (1000, 6500), 4, ("Oishi", "Jack 'n Jill", "Regent"),
             ("Prawn Crackers", "Potato Chips", "Cheese Rings", "Chicharon")),
    Category("beverages", (1500, 9500), 6, ("Coca-Cola", "Pepsi", "C2", "Zesto", "Kopiko"),
             ("Cola 1.5L", "Iced Tea 500ml", "Juice Drink", "3-in-1 Coffee Twin Pack")),
    Category("instant noodles", (800, 3200), 8, ("Lucky Me!", "Payless", "Nissin"),
             ("Pancit Canton", "Beef Mami", "Chicken Noodle Soup", "Cup Noodles")),
    Category("canned goods", (2500, 12000), 4, ("Century Tuna", "Argentina", "555", "Ligo"),
             ("Tuna Flakes", "Corned Beef", "Sardines", "Meat Loaf")),
    Category("dairy", (2500, 18000), 3, ("Alaska", "Bear Brand", "Nestlé", "Magnolia"),
             ("Evaporated Milk", "Powdered Milk 150g", "Fresh Milk 1L", "Cheese 165g")),
    Category("condiments", (1000, 8000), 2, ("Datu Puti", "Silver Swan", "Ajinomoto", "UFC"),
             ("Soy Sauce", "Vinegar", "Seasoning", "Banana Ketchup")),
    Category("bakery", (500, 8000), 10, ("Gardenia", "Marby", "Lemon Square"),
             ("Pandesal Pack", "Loaf Bread", "Cheese Cupcake", "Ensaymada")),
    Category("personal care", (1500, 25000), 2, ("Palmolive", "Safeguard", "Colgate", "Creamsilk"),
             ("Shampoo Sachet", "Bath Soap", "Toothpaste", "Conditioner")),
    Category("household", (2000, 30000), 2, ("Tide", "Surf", "Downy", "Zonrox"),
             ("Detergent Powder", "Fabric Conditioner", "Bleach", "Dishwashing Liquid")),
    Category("frozen", (6000, 35000), 2, ("Purefoods", "CDO", "Magnolia"),
             ("Hotdog 1kg", "Chicken Nuggets", "Ice Cream 1.5L", "Tocino")),
    Category("rice", (5000, 30000), 2, ("Sinandomeng", "Dinorado", "Jasmine"),
             ("Rice 1kg", "Rice 2kg", "Rice 5kg")),
    Category("baby care", (5000, 60000), 2, ("Pampers", "EQ", "Johnson's"),
             ("Diapers Small", "Diapers Medium", "Baby Wipes", "Baby Powder")),
    Category("alcohol", (4000, 40000), 6, ("San Miguel", "Red Horse", "Tanduay", "Emperador"),
             ("Pale Pilsen", "Beer Grande", "Rum 750ml", "Brandy 1L")),
)  # fmt: skip
CATEGORY_WEIGHTS = (14, 16, 12, 9, 8, 6, 9, 7, 5, 4, 4, 2, 4)


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    region: str
    city: str
    opened_on: date
    size: float  # relative traffic weight (long-tailed)
    pos_version: int  # POS firmware: 1 or 2 (schema pos.transaction/<n>)
    terminals: int


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    brand: str
    category: str
    price_centavos: int
    max_qty: int


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    channel: str
    partner: str
    store_ids: frozenset[str]
    lift: float  # multiplies the traffic of its stores while active
    discount_pct: int  # v2 POS stores show it as discount_amount
    first_day: int  # active from this day (0 = the run's start day, -3 = three days before)
    last_day: int

    def active(self, day_offset: int) -> bool:
        return self.first_day <= day_offset <= self.last_day


@dataclass(frozen=True)
class World:
    stores: tuple[Store, ...]
    late_stores: tuple[Store, ...]  # master record published only at the end of a run
    products: tuple[Product, ...]
    campaigns: tuple[Campaign, ...]
    partners: tuple[str, ...]


PARTNERS = ("grabmart", "foodpanda", "lazada", "shopee", "metromart")
CHANNELS = ("social", "search", "sms", "in_store", "app")


def build_world(rng: random.Random, n_stores: int, n_products: int = 300) -> World:
    """A retailer with ``n_stores`` stores (plus 3 not yet in master data)."""
    weights = [w for _, _, w in CITIES]
    all_stores = tuple(_store(rng, i + 1, weights) for i in range(n_stores + 3))
    stores, late = all_stores[:n_stores], all_stores[n_stores:]
    late = tuple(
        Store(f"S9{s.store_id[1:]}", s.name, s.region, s.city, s.opened_on, s.size,
              s.pos_version, s.terminals)
        for s in late
    )  # fmt: skip
    products = tuple(_product(rng, i + 1) for i in range(n_products))
    campaigns = tuple(_campaign(rng, i + 1, stores) for i in range(max(2, n_stores // 10)))
    return World(stores, late, products, campaigns, PARTNERS)


def _store(rng: random.Random, number: int, city_weights: list[float]) -> Store:
    region, city, _ = rng.choices(CITIES, city_weights)[0]
    size = min(rng.paretovariate(1.2), 40.0)
    opened = date(2012, 1, 1) + timedelta(days=rng.randrange(0, 365 * 13))
    return Store(
        store_id=f"S{number:04d}",
        name=f"Scout {city} {number}",
        region=region,
        city=city,
        opened_on=opened,
        size=size,
        pos_version=2 if rng.random() < 0.4 else 1,
        terminals=1 + min(int(size), 5),
    )


def _product(rng: random.Random, number: int) -> Product:
    category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
    low, high = category.price_centavos
    price = rng.randint(low, high) // 25 * 25 or low  # prices end in .00/.25/.50/.75
    return Product(
        sku=f"P-{number:04d}",
        name=f"{rng.choice(category.items)} #{number}",
        brand=rng.choice(category.brands),
        category=category.name,
        price_centavos=price,
        max_qty=category.max_qty,
    )


def _campaign(rng: random.Random, number: int, stores: tuple[Store, ...]) -> Campaign:
    picked = rng.sample(stores, k=max(1, len(stores) // 4))
    first = -rng.randint(0, 30)
    return Campaign(
        campaign_id=f"CMP-{number}",
        channel=rng.choice(CHANNELS),
        partner=rng.choice(PARTNERS),
        store_ids=frozenset(s.store_id for s in picked),
        lift=round(rng.uniform(1.2, 1.8), 2),
        discount_pct=rng.choice((5, 10, 15, 20)),
        first_day=first,
        last_day=first + rng.randint(5, 40),
    )


def store_payload(store: Store) -> dict[str, object]:
    """The ``master.store/1`` record of a store."""
    return {
        "schema": "master.store/1",
        "store_id": store.store_id,
        "name": store.name,
        "region": store.region,
        "city": store.city,
        "timezone": TIMEZONE,
        "opened_on": store.opened_on.isoformat(),
    }


def product_payload(product: Product) -> dict[str, object]:
    """The ``master.product/1`` record of a product."""
    return {
        "schema": "master.product/1",
        "sku": product.sku,
        "name": product.name,
        "brand": product.brand,
        "category": product.category,
        "unit_price": product.price_centavos / 100,
    }

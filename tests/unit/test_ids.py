"""Name-based ids equal the standard library's uuid5 (pure)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.common.ids import NameIds

NAMESPACE = uuid.UUID("8d7f3a52-1c0e-4f43-9b6d-5e2a7c9b0f14")
IDS = NameIds(NAMESPACE)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_same_as_uuid5(name: str) -> None:
    assert IDS(name) == uuid.uuid5(NAMESPACE, name)
    assert IDS(name).version == 5

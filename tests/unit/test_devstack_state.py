"""One state dir holds one kind of local stack (plaintext or secure), never both."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.devstack.stack import SECURE_MARKER, _check_state_kind


def test_secure_stack_never_reuses_the_plaintext_state(tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    with pytest.raises(ConfigError, match="holds the plaintext stack"):
        _check_state_kind(tmp_path, secure=True)
    assert not (tmp_path / SECURE_MARKER).exists()


def test_plaintext_stack_never_reuses_the_secure_state(tmp_path: Path) -> None:
    _check_state_kind(tmp_path / "s", secure=True)  # a fresh folder becomes a secure one
    assert (tmp_path / "s" / SECURE_MARKER).exists()
    (tmp_path / "s" / "kafka").mkdir()
    _check_state_kind(tmp_path / "s", secure=True)  # and stays usable as one
    with pytest.raises(ConfigError, match="holds the secure stack"):
        _check_state_kind(tmp_path / "s", secure=False)
    _check_state_kind(tmp_path / "plain", secure=False)  # nothing there: fine

"""Name-based ids (RFC 4122 version 5), made where every record needs one.

``uuid.uuid5`` re-reads the namespace's bytes on every call, which was a third of its cost in
bronze's and silver's per-record work. :class:`NameIds` keeps them; the ids are the same
(tests/unit/test_ids.py).
"""

from __future__ import annotations

import hashlib
import uuid


class NameIds:
    """``uuid.uuid5(namespace, name)`` for one namespace."""

    def __init__(self, namespace: uuid.UUID) -> None:
        self.namespace = namespace
        self._prefix = namespace.bytes

    def __call__(self, name: str) -> uuid.UUID:
        digest = hashlib.sha1(self._prefix + name.encode("utf-8"), usedforsecurity=False)
        return uuid.UUID(bytes=digest.digest()[:16], version=5)

"""The hash that links audit entries. Pure functions, shared by the writer and the verifier.

An entry's hash covers its identity, its metadata, its *decrypted* details and the previous entry's hash. The
details are hashed in plaintext (canonical JSON) rather than as ciphertext so that re-encrypting them under a
new key (`posomni rotate-key`) keeps every chain valid; the ciphertext itself is bound to its chain position by
the encryption's associated data, so ciphertexts cannot be swapped between rows either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

GENESIS_HASH: Final = "0" * 64


def chain_for(store_id: int | None) -> str:
    return "global" if store_id is None else f"store:{store_id}"


def payload_aad(chain: str, seq: int) -> str:
    return f"audit:{chain}:{seq}"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# The columns of an entry its hash covers, besides its decrypted details.
HASHED_COLUMNS: Final = (
    "chain", "seq", "occurred_at", "store_id", "register_id", "actor_id", "actor_role", "action", "target_type",
    "target_id", "request_id", "prev_hash",
)  # fmt: skip


def entry_hash(columns: Mapping[str, Any], details: Any) -> str:
    content = {name: columns[name] for name in HASHED_COLUMNS}
    # Microseconds in UTC: both databases keep them, so the hash is stable after a round trip.
    content["occurred_at"] = columns["occurred_at"].isoformat(timespec="microseconds")
    content["details"] = details
    return hashlib.sha256(canonical(content).encode("utf-8")).hexdigest()


def hashed_columns(entry: Any) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASHED_COLUMNS}

"""The hash that links audit entries. Pure functions, shared by the writer and the verifier.

An entry's hash covers its identity, its metadata, its *decrypted* details and the previous entry's hash. The
details are hashed in plaintext (canonical JSON) rather than as ciphertext so that re-encrypting them under a
new key (`posomni rotate-key`) keeps every chain valid; the ciphertext itself is bound to its chain position by
the encryption's associated data, so ciphertexts cannot be swapped between rows either.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Final

GENESIS_HASH: Final = "0" * 64


def chain_for(store_id: int | None) -> str:
    return "global" if store_id is None else f"store:{store_id}"


def payload_aad(chain: str, seq: int) -> str:
    return f"audit:{chain}:{seq}"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    *,
    chain: str,
    seq: int,
    occurred_at: datetime,
    store_id: int | None,
    register_id: int | None,
    actor_id: int | None,
    actor_role: str | None,
    action: str,
    target_type: str | None,
    target_id: str | None,
    request_id: str | None,
    details: Any,
    prev_hash: str,
) -> str:
    content = canonical(
        {
            "chain": chain,
            "seq": seq,
            # Microseconds in UTC: both databases keep them, so the hash is stable after a round trip.
            "occurred_at": occurred_at.isoformat(timespec="microseconds"),
            "store_id": store_id,
            "register_id": register_id,
            "actor_id": actor_id,
            "actor_role": actor_role,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "request_id": request_id,
            "details": details,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()

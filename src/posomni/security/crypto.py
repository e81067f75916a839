"""AES-256-GCM field encryption with key ids, so data written under an old key stays readable during rotation.

A token looks like ``v1.<key_id>.<base64url(nonce | ciphertext | tag)>`` (unpadded base64url):

* ``v1`` names this format: 96-bit random nonce, AES-256-GCM, 128-bit tag.
* ``key_id`` is 8 hex characters derived from the key (see `key_id_for`), so a reader knows which key to use
  and a rotation job can find rows still written under an old key.
* The associated data authenticated with the ciphertext is ``"v1.<key_id>" NUL <aad>``: the caller's ``aad``
  (for example ``"audit:42"``) binds a token to its row, so a ciphertext copied onto another row fails to
  decrypt, and the header is bound too, so editing the version or key id is detected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
FORMAT_VERSION: Final = "v1"

_KEY_ID_LABEL: Final = b"posomni/encryption-key-id/v1\x00"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidKeyError(ValueError):
    """A configured key is not usable. Messages name the setting, never the value."""


class DecryptionError(Exception):
    """A stored token could not be decrypted.

    Not a `PosError`: this is an integrity failure on the server's own data, not something the client can
    fix, so it must surface as a 500 and be logged, never mapped to a friendly 4xx.
    """

    code: ClassVar[str] = "decryption_failed"
    reason: ClassVar[str] = "it could not be decrypted"

    def __init__(self, *, label: str | None = None, key_id: str | None = None) -> None:
        self.label = label
        self.key_id = key_id
        subject = label if label else "encrypted value"
        super().__init__(f"cannot decrypt {subject}: {self.describe()}")

    def describe(self) -> str:
        return self.reason


class MalformedTokenError(DecryptionError):
    code = "malformed"
    reason = "the stored value is not a well-formed encrypted token"


class UnknownKeyError(DecryptionError):
    code = "unknown_key"
    reason = "it was encrypted under a key that is not configured"

    def describe(self) -> str:
        # The key id is a one-way fingerprint, safe to show, and tells the operator which old key to restore.
        return f"it was encrypted under key id {self.key_id}, which is not configured"


class TamperedTokenError(DecryptionError):
    code = "tampered"
    reason = (
        "authentication failed (the value was altered, belongs to another record, "
        "or the key was replaced by a different key)"
    )


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    key_id: str
    # repr=False keeps the key material out of logs, tracebacks and test failure output.
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise InvalidKeyError(f"an encryption key must be exactly {KEY_BYTES} bytes")

    @classmethod
    def from_bytes(cls, material: bytes) -> EncryptionKey:
        return cls(key_id=key_id_for(material), material=material)


class KeyProvider(Protocol):
    """Where keys come from: settings today, a cloud KMS later."""

    def current_key(self) -> EncryptionKey: ...

    def key_by_id(self, key_id: str) -> EncryptionKey | None: ...


def key_id_for(material: bytes) -> str:
    # A truncated hash of a fixed label plus the key: stable across restarts, and 32 bits of a SHA-256 output
    # reveal nothing usable about a 256-bit key. The label keeps this hash from matching any other use of
    # SHA-256 over the same bytes.
    return hashlib.sha256(_KEY_ID_LABEL + material).hexdigest()[:8]


def generate_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_key(value: str, *, setting: str = "AUDIT_LOG_ENCRYPTION_KEY") -> bytes:
    """Decode a base64 key from settings, with a message that says what is wrong and how to fix it."""
    hint = "generate one with `python -c 'from posomni.security.crypto import generate_key; print(generate_key())'`"
    text = value.strip()
    if not text:
        raise InvalidKeyError(f"{setting} is empty; {hint}")
    # Accept the URL-safe alphabet too, since some secret stores hand keys out that way.
    normalised = text.replace("-", "+").replace("_", "/")
    if not _BASE64.fullmatch(normalised):
        raise InvalidKeyError(f"{setting} is not valid base64; {hint}")
    try:
        material = base64.b64decode(normalised, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError(f"{setting} is not valid base64 (check the padding); {hint}") from None
    if len(material) != KEY_BYTES:
        raise InvalidKeyError(f"{setting} decodes to {len(material)} bytes; AES-256 needs exactly {KEY_BYTES}; {hint}")
    return material


def validate_key(value: str, *, setting: str = "AUDIT_LOG_ENCRYPTION_KEY") -> None:
    parse_key(value, setting=setting)


class StaticKeyProvider:
    """Keys held in memory: one current key plus the old keys still needed to read existing rows."""

    def __init__(self, current: EncryptionKey, previous: Iterable[EncryptionKey] = ()) -> None:
        self._current = current
        self._keys: dict[str, EncryptionKey] = {current.key_id: current}
        for key in previous:
            known = self._keys.get(key.key_id)
            if known is not None and known.material != key.material:
                # Two different keys sharing an id would make decryption pick the wrong one.
                raise InvalidKeyError(f"two configured keys share the key id {key.key_id}; generate a new key")
            self._keys[key.key_id] = key

    @classmethod
    def from_settings(cls, current: str, old: str | None = None) -> StaticKeyProvider:
        """Build from `AUDIT_LOG_ENCRYPTION_KEY` and the optional `OLD_AUDIT_LOG_ENCRYPTION_KEY`."""
        current_key = EncryptionKey.from_bytes(parse_key(current, setting="AUDIT_LOG_ENCRYPTION_KEY"))
        previous: list[EncryptionKey] = []
        if old is not None and old.strip():
            previous.append(EncryptionKey.from_bytes(parse_key(old, setting="OLD_AUDIT_LOG_ENCRYPTION_KEY")))
        return cls(current_key, previous)

    def current_key(self) -> EncryptionKey:
        return self._current

    def key_by_id(self, key_id: str) -> EncryptionKey | None:
        return self._keys.get(key_id)


@dataclass(frozen=True, slots=True)
class _ParsedToken:
    key_id: str
    nonce: bytes
    sealed: bytes  # ciphertext followed by the 16-byte tag, as AESGCM expects


def _associated_data(key_id: str, aad: str) -> bytes:
    # The header is a fixed-width prefix followed by NUL, so no choice of `aad` can imitate another header.
    return f"{FORMAT_VERSION}.{key_id}".encode("ascii") + b"\x00" + aad.encode("utf-8")


def _require_aad(aad: str) -> None:
    if not aad:
        raise ValueError("aad must name the record or purpose the value belongs to, e.g. 'audit:42'")


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _parse(token: str, *, label: str | None) -> _ParsedToken:
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedTokenError(label=label)
    version, key_id, body = parts
    if version != FORMAT_VERSION or not _KEY_ID.fullmatch(key_id) or not _BASE64URL.fullmatch(body):
        raise MalformedTokenError(label=label)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise MalformedTokenError(label=label) from None
    # Only the canonical encoding is accepted, so one ciphertext has exactly one token spelling.
    if _b64url_encode(raw) != body or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise MalformedTokenError(label=label)
    return _ParsedToken(key_id=key_id, nonce=raw[:NONCE_BYTES], sealed=raw[NONCE_BYTES:])


class EncryptionService:
    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys

    def encrypt(self, plaintext: bytes | str, *, aad: str) -> str:
        _require_aad(aad)
        data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        key = self._keys.current_key()
        # A fresh random 96-bit nonce per message. GCM breaks completely if a nonce repeats under one key;
        # random nonces stay safe up to about 2**32 messages per key, far beyond an audit log's volume,
        # and yearly rotation resets the count.
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key.material).encrypt(nonce, data, _associated_data(key.key_id, aad))
        return f"{FORMAT_VERSION}.{key.key_id}.{_b64url_encode(nonce + sealed)}"

    def decrypt(self, token: str, *, aad: str, label: str | None = None) -> bytes:
        """`label` names the record in error messages (e.g. "audit_log row 42"); it is never encrypted."""
        _require_aad(aad)
        parsed = _parse(token, label=label)
        key = self._keys.key_by_id(parsed.key_id)
        if key is None:
            raise UnknownKeyError(label=label, key_id=parsed.key_id)
        try:
            return AESGCM(key.material).decrypt(parsed.nonce, parsed.sealed, _associated_data(parsed.key_id, aad))
        except InvalidTag:
            raise TamperedTokenError(label=label, key_id=parsed.key_id) from None

    def decrypt_text(self, token: str, *, aad: str, label: str | None = None) -> str:
        data = self.decrypt(token, aad=aad, label=label)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedTokenError(label=label) from None

    def encrypt_json(self, value: Any, *, aad: str) -> str:
        # allow_nan=False: NaN and Infinity are not JSON and other readers would reject them.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return self.encrypt(text, aad=aad)

    def decrypt_json(self, token: str, *, aad: str, label: str | None = None) -> Any:
        text = self.decrypt_text(token, aad=aad, label=label)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise MalformedTokenError(label=label) from None

    def key_id_of(self, token: str) -> str:
        return _parse(token, label=None).key_id

    @property
    def current_key_id(self) -> str:
        return self._keys.current_key().key_id

    def needs_rotation(self, token: str) -> bool:
        return self.key_id_of(token) != self._keys.current_key().key_id

    def reencrypt(self, token: str, *, aad: str, label: str | None = None) -> str:
        """Decrypt under whichever key wrote it, then encrypt again under the current key and a new nonce."""
        return self.encrypt(self.decrypt(token, aad=aad, label=label), aad=aad)

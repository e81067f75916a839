from __future__ import annotations

import base64
import re

import pytest

from posomni.security.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    DecryptionError,
    EncryptionKey,
    EncryptionService,
    InvalidKeyError,
    MalformedTokenError,
    StaticKeyProvider,
    TamperedTokenError,
    UnknownKeyError,
    generate_key,
    key_id_for,
    parse_key,
    validate_key,
)

OLD_MATERIAL = bytes(range(32))
NEW_MATERIAL = bytes(range(100, 132))
TOKEN_SHAPE = re.compile(r"v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+")


def b64(material: bytes) -> str:
    return base64.b64encode(material).decode("ascii")


def service_with(current: bytes, *previous: bytes) -> EncryptionService:
    keys = StaticKeyProvider(EncryptionKey.from_bytes(current), [EncryptionKey.from_bytes(p) for p in previous])
    return EncryptionService(keys)


def split(token: str) -> tuple[str, str, bytes]:
    version, key_id, body = token.split(".")
    return version, key_id, base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def join(version: str, key_id: str, raw: bytes) -> str:
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')}"


class FixedKeyProvider:
    """A provider at the port that can hand out a different key under a given id."""

    def __init__(self, key: EncryptionKey) -> None:
        self.key = key

    def current_key(self) -> EncryptionKey:
        return self.key

    def key_by_id(self, key_id: str) -> EncryptionKey | None:
        return self.key if key_id == self.key.key_id else None


@pytest.fixture
def service() -> EncryptionService:
    return service_with(NEW_MATERIAL)


# --- round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"\x00\x01\xff binary", b"x" * 100_000, "", "plain text", "Añejo tequila 🥃 — 750 ml, 40 % ABV"],
)
def test_encrypted_value_decrypts_to_the_original(service: EncryptionService, plaintext: bytes | str) -> None:
    token = service.encrypt(plaintext, aad="audit:42")
    expected = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    assert service.decrypt(token, aad="audit:42") == expected


def test_text_round_trip_returns_str(service: EncryptionService) -> None:
    token = service.encrypt("Crème de cassis", aad="note:7")
    assert service.decrypt_text(token, aad="note:7") == "Crème de cassis"


@pytest.mark.parametrize(
    "value",
    [
        {"action": "sale.void", "amount_cents": 1999, "by": "Zoë", "tags": ["manager", None], "ok": True},
        [1, 2.5, "three", {"nested": {"deep": []}}],
        "just a string",
        0,
        None,
        {},
    ],
)
def test_json_round_trip(service: EncryptionService, value: object) -> None:
    token = service.encrypt_json(value, aad="audit:1")
    assert service.decrypt_json(token, aad="audit:1") == value


def test_json_refuses_nan_because_it_is_not_json(service: EncryptionService) -> None:
    with pytest.raises(ValueError, match="JSON"):
        service.encrypt_json({"rate": float("nan")}, aad="audit:1")


def test_token_is_ascii_with_version_and_key_id(service: EncryptionService) -> None:
    token = service.encrypt(b"secret", aad="audit:1")
    assert token.isascii()
    assert TOKEN_SHAPE.fullmatch(token)
    version, key_id, raw = split(token)
    assert version == "v1"
    assert key_id == key_id_for(NEW_MATERIAL)
    assert len(raw) == NONCE_BYTES + len(b"secret") + TAG_BYTES


def test_same_plaintext_encrypts_differently_each_time(service: EncryptionService) -> None:
    tokens = {service.encrypt(b"same", aad="audit:1") for _ in range(50)}
    assert len(tokens) == 50


def test_no_nonce_repeats_over_ten_thousand_encryptions(service: EncryptionService) -> None:
    nonces = {split(service.encrypt(b"x", aad="audit:1"))[2][:NONCE_BYTES] for _ in range(10_000)}
    assert len(nonces) == 10_000


def test_empty_associated_data_is_refused(service: EncryptionService) -> None:
    with pytest.raises(ValueError, match="aad"):
        service.encrypt(b"x", aad="")
    token = service.encrypt(b"x", aad="audit:1")
    with pytest.raises(ValueError, match="aad"):
        service.decrypt(token, aad="")


# --- tampering and failures ------------------------------------------------------------------------------


def test_flipping_any_byte_of_nonce_ciphertext_or_tag_is_detected(service: EncryptionService) -> None:
    token = service.encrypt(b"total=1999", aad="audit:42")
    version, key_id, raw = split(token)
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises(TamperedTokenError) as caught:
            service.decrypt(join(version, key_id, bytes(altered)), aad="audit:42")
        assert caught.value.code == "tampered"


def test_ciphertext_moved_to_another_row_fails(service: EncryptionService) -> None:
    token = service.encrypt(b"refund approved", aad="audit:42")
    with pytest.raises(TamperedTokenError):
        service.decrypt(token, aad="audit:43")


def test_changing_the_key_id_to_another_configured_key_is_detected() -> None:
    service = service_with(NEW_MATERIAL, OLD_MATERIAL)
    token = service.encrypt(b"x", aad="audit:1")
    forged = token.replace(key_id_for(NEW_MATERIAL), key_id_for(OLD_MATERIAL))
    with pytest.raises(TamperedTokenError):
        service.decrypt(forged, aad="audit:1")


def test_changing_the_key_id_to_an_unknown_one_reports_unknown_key(service: EncryptionService) -> None:
    token = service.encrypt(b"x", aad="audit:1")
    forged = token.replace(key_id_for(NEW_MATERIAL), "00000000")
    with pytest.raises(UnknownKeyError) as caught:
        service.decrypt(forged, aad="audit:1")
    assert caught.value.code == "unknown_key"
    assert caught.value.key_id == "00000000"


def test_a_different_key_under_the_same_id_fails_authentication() -> None:
    real = EncryptionKey.from_bytes(NEW_MATERIAL)
    impostor = EncryptionKey(key_id=real.key_id, material=OLD_MATERIAL)
    token = EncryptionService(FixedKeyProvider(real)).encrypt(b"x", aad="audit:1")
    with pytest.raises(TamperedTokenError):
        EncryptionService(FixedKeyProvider(impostor)).decrypt(token, aad="audit:1")


def test_a_service_without_the_writing_key_reports_unknown_key() -> None:
    token = service_with(OLD_MATERIAL).encrypt(b"x", aad="audit:1")
    with pytest.raises(UnknownKeyError):
        service_with(NEW_MATERIAL).decrypt(token, aad="audit:1")


def test_truncated_tokens_are_refused(service: EncryptionService) -> None:
    token = service.encrypt(b"a reasonably long audit payload", aad="audit:1")
    for length in range(len(token)):
        with pytest.raises(DecryptionError) as caught:
            service.decrypt(token[:length], aad="audit:1")
        assert caught.value.code in {"malformed", "tampered"}


def test_truncating_the_raw_bytes_below_nonce_and_tag_is_malformed(service: EncryptionService) -> None:
    version, key_id, raw = split(service.encrypt(b"", aad="audit:1"))
    with pytest.raises(MalformedTokenError):
        service.decrypt(join(version, key_id, raw[:-1]), aad="audit:1")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "v1..",
        "v1.abcdef12",
        "v1.abcdef12.",
        "v1.ABCDEF12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.abcdef1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v2.abcdef12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.abcdef12.AAAA.AAAA",
        "v1.abcdef12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        "v1.abcdef12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/AA",
        "v1.abcdef12.ÄAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.abcdef12.A",
    ],
)
def test_garbage_is_reported_as_malformed(service: EncryptionService, garbage: str) -> None:
    with pytest.raises(MalformedTokenError) as caught:
        service.decrypt(garbage, aad="audit:1")
    assert caught.value.code == "malformed"


def test_non_canonical_base64_spelling_is_malformed(service: EncryptionService) -> None:
    # 29 raw bytes take 39 characters, and the last character carries 2 bits that decoding ignores.
    token = service.encrypt(b"x", aad="audit:1")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    sloppy = token[:-1] + alphabet[last ^ 0b01]
    assert sloppy != token
    with pytest.raises(MalformedTokenError):
        service.decrypt(sloppy, aad="audit:1")


def test_error_message_names_the_row_but_not_the_data(service: EncryptionService) -> None:
    token = service.encrypt(b"customer DOB 1990-01-01", aad="audit:42")
    with pytest.raises(TamperedTokenError) as caught:
        service.decrypt(token, aad="audit:41", label="audit_log row 42")
    message = str(caught.value)
    assert "audit_log row 42" in message
    assert "1990" not in message
    assert token not in message
    assert caught.value.label == "audit_log row 42"


def test_unknown_key_message_names_the_key_id_for_the_operator() -> None:
    token = service_with(OLD_MATERIAL).encrypt(b"x", aad="audit:1")
    with pytest.raises(UnknownKeyError) as caught:
        service_with(NEW_MATERIAL).decrypt(token, aad="audit:1", label="audit_log row 9")
    assert key_id_for(OLD_MATERIAL) in str(caught.value)
    assert "audit_log row 9" in str(caught.value)


def test_decrypt_text_refuses_bytes_that_are_not_utf8(service: EncryptionService) -> None:
    token = service.encrypt(b"\xff\xfe", aad="audit:1")
    with pytest.raises(MalformedTokenError):
        service.decrypt_text(token, aad="audit:1")


def test_decrypt_json_refuses_a_payload_that_is_not_json(service: EncryptionService) -> None:
    token = service.encrypt("not json {", aad="audit:1")
    with pytest.raises(MalformedTokenError):
        service.decrypt_json(token, aad="audit:1")


# --- rotation --------------------------------------------------------------------------------------------


def test_rotation_reads_old_tokens_and_moves_them_to_the_current_key() -> None:
    old_token = service_with(OLD_MATERIAL).encrypt_json({"sale": 17}, aad="audit:17")
    rotating = service_with(NEW_MATERIAL, OLD_MATERIAL)

    assert rotating.decrypt_json(old_token, aad="audit:17") == {"sale": 17}
    assert rotating.needs_rotation(old_token)

    new_token = rotating.reencrypt(old_token, aad="audit:17")
    assert rotating.key_id_of(new_token) == key_id_for(NEW_MATERIAL)
    assert not rotating.needs_rotation(new_token)
    # Once every row is rotated, the old key can be dropped.
    assert service_with(NEW_MATERIAL).decrypt_json(new_token, aad="audit:17") == {"sale": 17}


def test_reencrypt_checks_the_associated_data(service: EncryptionService) -> None:
    token = service.encrypt(b"x", aad="audit:1")
    with pytest.raises(TamperedTokenError):
        service.reencrypt(token, aad="audit:2")


def test_token_under_current_key_does_not_need_rotation(service: EncryptionService) -> None:
    assert not service.needs_rotation(service.encrypt(b"x", aad="audit:1"))


def test_needs_rotation_refuses_malformed_tokens(service: EncryptionService) -> None:
    with pytest.raises(MalformedTokenError):
        service.needs_rotation("nonsense")


def test_provider_from_settings_uses_current_key_and_keeps_old_for_reading() -> None:
    old_token = service_with(OLD_MATERIAL).encrypt(b"x", aad="audit:1")
    provider = StaticKeyProvider.from_settings(b64(NEW_MATERIAL), b64(OLD_MATERIAL))
    assert provider.current_key().key_id == key_id_for(NEW_MATERIAL)
    assert EncryptionService(provider).decrypt(old_token, aad="audit:1") == b"x"


@pytest.mark.parametrize("old", [None, "", "   "])
def test_provider_from_settings_treats_a_blank_old_key_as_absent(old: str | None) -> None:
    provider = StaticKeyProvider.from_settings(b64(NEW_MATERIAL), old)
    assert provider.key_by_id(key_id_for(OLD_MATERIAL)) is None


def test_provider_accepts_the_same_key_as_current_and_old() -> None:
    provider = StaticKeyProvider.from_settings(b64(NEW_MATERIAL), b64(NEW_MATERIAL))
    assert provider.key_by_id(key_id_for(NEW_MATERIAL)) == provider.current_key()


def test_provider_refuses_two_different_keys_with_one_id() -> None:
    current = EncryptionKey.from_bytes(NEW_MATERIAL)
    clash = EncryptionKey(key_id=current.key_id, material=OLD_MATERIAL)
    with pytest.raises(InvalidKeyError, match="share the key id"):
        StaticKeyProvider(current, [clash])


def test_bad_old_key_setting_is_named_in_the_error() -> None:
    with pytest.raises(InvalidKeyError, match="OLD_AUDIT_LOG_ENCRYPTION_KEY"):
        StaticKeyProvider.from_settings(b64(NEW_MATERIAL), "short")


# --- keys ------------------------------------------------------------------------------------------------


def test_key_id_is_stable_short_hex_and_differs_between_keys() -> None:
    assert key_id_for(NEW_MATERIAL) == key_id_for(bytes(NEW_MATERIAL))
    assert re.fullmatch(r"[0-9a-f]{8}", key_id_for(NEW_MATERIAL))
    assert key_id_for(NEW_MATERIAL) != key_id_for(OLD_MATERIAL)
    assert key_id_for(NEW_MATERIAL) not in NEW_MATERIAL.hex()


def test_key_repr_does_not_show_key_material() -> None:
    key = EncryptionKey.from_bytes(NEW_MATERIAL)
    assert NEW_MATERIAL.hex() not in repr(key)
    assert repr(NEW_MATERIAL) not in repr(key)
    assert key.key_id in repr(key)


def test_key_of_wrong_length_cannot_be_built() -> None:
    with pytest.raises(InvalidKeyError, match="32 bytes"):
        EncryptionKey.from_bytes(b"\x00" * 16)


def test_generated_keys_are_valid_and_distinct() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(parse_key(key)) == KEY_BYTES
        validate_key(key)


def test_parse_key_accepts_url_safe_alphabet_and_surrounding_whitespace() -> None:
    material = bytes([0xFB, 0xFF] * 16)  # encodes with '+' and '/' in the standard alphabet
    url_safe = base64.urlsafe_b64encode(material).decode("ascii")
    assert "-" in url_safe or "_" in url_safe
    assert parse_key(f"  {url_safe}\n") == material


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("not base64 at all!", "not valid base64"),
        (b64(OLD_MATERIAL).rstrip("="), "padding"),
        (b64(b"\x00" * 16), "decodes to 16 bytes; AES-256 needs exactly 32"),
        (b64(b"\x00" * 64), "decodes to 64 bytes"),
    ],
)
def test_invalid_key_setting_gets_a_clear_message(value: str, expected: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(value, setting="AUDIT_LOG_ENCRYPTION_KEY")
    message = str(caught.value)
    assert expected in message
    assert "AUDIT_LOG_ENCRYPTION_KEY" in message
    assert "generate_key" in message
    if value.strip():
        assert value not in message

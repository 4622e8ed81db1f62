"""The way back from a de-identified text to its original: the mapping, encrypted with PII_KEY.

Light on purpose (no Presidio): exports and reveals restore originals without loading the
analyzer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class MappingError(ValueError):
    """The key does not open a mapping; the message says so."""


def restore(text: str, replacements: list[dict[str, Any]]) -> str:
    """The original text back from a de-identified one and its mapping."""
    for r in sorted(replacements, key=lambda r: -int(r["start"])):
        text = text[: int(r["start"])] + str(r["original"]) + text[int(r["end"]) :]
    return text


def encrypt(replacements: list[dict[str, Any]], key: bytes) -> bytes:
    from cryptography.fernet import Fernet

    return Fernet(key).encrypt(json.dumps(replacements, ensure_ascii=False).encode())


Keys = bytes | Sequence[bytes]  # PII_KEY, or PII_KEY then the keys it replaced (a rotation under way)


def fernet(keys: Keys) -> Any:
    """A MultiFernet over PII_KEY (then the keys it replaced): what mappings and sealed originals use."""
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(k) for k in ((keys,) if isinstance(keys, bytes) else keys)])


def decrypt(mapping: bytes, key: Keys) -> list[dict[str, Any]]:
    """The replacements of a mapping, opened with PII_KEY or, during a rotation, a key it replaced."""
    from cryptography.fernet import InvalidToken

    try:
        return list(json.loads(fernet(key).decrypt(bytes(mapping))))
    except InvalidToken:
        raise MappingError("PII_KEY does not open this mapping: it was written with another key") from None


def rotate(mapping: bytes, keys: Sequence[bytes]) -> bytes:
    """The mapping encrypted again with the first key (PII_KEY), opened with any of them."""
    from cryptography.fernet import InvalidToken

    try:
        return bytes(fernet(keys).rotate(bytes(mapping)))
    except InvalidToken:
        raise MappingError("neither PII_KEY nor PII_KEY_PREVIOUS opens this mapping") from None

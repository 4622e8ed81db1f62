"""The way back from a de-identified text to its original: the mapping, encrypted with PII_KEY.

Light on purpose (no Presidio): exports and reveals restore originals without loading the
analyzer.
"""

from __future__ import annotations

import json
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


def decrypt(mapping: bytes, key: bytes) -> list[dict[str, Any]]:
    from cryptography.fernet import Fernet, InvalidToken

    try:
        return list(json.loads(Fernet(key).decrypt(bytes(mapping))))
    except InvalidToken:
        raise MappingError("PII_KEY does not open this mapping: it was written with another key") from None

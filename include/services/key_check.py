"""Is PII_KEY the key the stored mappings were written with? Checked at start, before the
de-identification step writes, and before an originals export sends its first byte.

A key that changed (a ``.env`` that wins over the generated key, a restored database, a typo)
used to surface late: reveals failed, an originals export started a 200 and died mid-file, a
dataset whose policy changed stayed pending, and ``hash`` pseudonyms silently changed. The
fingerprint is an HMAC under the key of a fixed text: it tells keys apart and reveals nothing
of the key. A database from before fingerprints is checked by opening one stored mapping.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import KeyFingerprint, PiiMapping
from include.pii.mapping import MappingError, decrypt
from include.services.pii import KeyUnavailable

NAME = "PII_KEY"
_CONTEXT = b"labelops: which PII_KEY is this, v1"


class KeyMismatch(KeyUnavailable):
    """PII_KEY is not the key the platform's mappings were written with (503)."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, _CONTEXT, hashlib.sha256).hexdigest()[:16]


def check_pii_key(session: Session, key: bytes, previous: Sequence[bytes] = ()) -> str:
    """Record the key's fingerprint the first time, and refuse a different key after that;
    returns the fingerprint. The caller commits (a first fingerprint).

    During a rotation (``previous``: PII_KEY_PREVIOUS) the recorded key may be one of the keys
    PII_KEY replaced; ``rotate_pii_key`` re-encrypts the mappings and then records the new one.

    Raises:
        KeyMismatch: the key differs from the recorded one, or does not open a stored mapping.
    """
    mine = fingerprint(key)
    recorded = session.get(KeyFingerprint, NAME)
    if recorded is not None:
        accepted = [mine, *(fingerprint(k) for k in previous)]
        if not any(hmac.compare_digest(recorded.fingerprint, f) for f in accepted):
            raise KeyMismatch(
                f"{NAME} is not the key this platform's mappings were written with (fingerprint "
                f"{recorded.fingerprint}, this key's {mine}): set {NAME} to that key (make run keeps a "
                f"generated one in .labelops/secrets.json; a .env value wins over it)",
                expected=recorded.fingerprint,
                got=mine,
            )
        return mine
    sample = session.scalar(select(PiiMapping.mapping).limit(1))
    if sample is not None:
        try:
            decrypt(sample, (key, *previous))
        except MappingError:
            raise KeyMismatch(
                f"{NAME} does not open the mappings already stored (this key's fingerprint {mine}): "
                f"set {NAME} to the key they were written with",
                expected="the key of the stored mappings",
                got=mine,
            ) from None
    session.add(KeyFingerprint(name=NAME, fingerprint=mine))
    session.flush()
    return mine


def record_rotated(session: Session, key: bytes) -> None:
    """After every mapping is re-encrypted with ``key``: it is the platform's key from now on."""
    recorded = session.get(KeyFingerprint, NAME)
    if recorded is None:
        session.add(KeyFingerprint(name=NAME, fingerprint=fingerprint(key)))
    else:
        recorded.fingerprint = fingerprint(key)
        recorded.recorded_at = datetime.now(UTC)
    session.flush()

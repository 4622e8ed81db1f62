"""Originals sealed at rest: what an upload holds before its dataset's deidentify step runs.

An item of a dataset with a policy is stored sealed: ``items.text`` is empty, the original text
and the kept columns are encrypted with PII_KEY in ``items.sealed``, and ``items.text_hash`` is
an HMAC under a key derived from PII_KEY (still a deduplication key within the dataset, but no
longer a hash anyone can confirm a short original against). The deidentify step opens the
seal, stores the de-identified text and its mapping, and drops the seal; until then every
reader already skips pending items. A policy attached to a dataset whose items are plaintext
seals them too; a policy removed by decision ("no personal data") opens them again.

Fernet (from ``cryptography``, as the mappings) rather than anything hand-made; MultiFernet
opens seals during a key rotation and ``rotate_pii_key`` re-encrypts them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from include.db.models import Item, PiiMapping
from include.pii.mapping import Keys, MappingError, fernet, rotate
from include.services.pii import KeyUnavailable, move_hashes, rehash

BATCH = 1000


@dataclass(frozen=True)
class Opened:
    text: str
    kept: dict[str, Any]


def seal(text: str, kept: dict[str, Any], key: bytes) -> bytes:
    """The original text and kept columns, encrypted with PII_KEY."""
    return bytes(fernet(key).encrypt(json.dumps({"text": text, "kept": kept}, ensure_ascii=False).encode()))


def unseal(blob: bytes, keys: Keys) -> Opened:
    """The original back (PII_KEY, or during a rotation a key it replaced).

    Raises:
        KeyUnavailable: no key given opens it.
    """
    from cryptography.fernet import InvalidToken

    try:
        value = json.loads(fernet(keys).decrypt(bytes(blob)))
    except InvalidToken:
        raise KeyUnavailable("PII_KEY does not open this sealed original: it was written with another key") from None
    return Opened(str(value["text"]), dict(value.get("kept") or {}))


def reseal(blob: bytes, keys: Sequence[bytes]) -> bytes:
    """A seal encrypted again with the first key (PII_KEY), for ``rotate_pii_key``."""
    try:
        return rotate(blob, keys)
    except MappingError:
        raise KeyUnavailable("neither PII_KEY nor PII_KEY_PREVIOUS opens this sealed original") from None


def digest(text: str, key: bytes) -> str:
    """The keyed deduplication hash of a sealed text (HMAC-SHA256, hex: as long as sha256's)."""
    derived = hmac.new(key, b"labelops:sealed-text-hash", hashlib.sha256).digest()
    return hmac.new(derived, text.encode("utf-8"), hashlib.sha256).hexdigest()


def split_kept(source: dict[str, Any], kept: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what stays readable: the file and line, what is sealed: the kept columns)."""
    names = set(kept)
    return (
        {k: v for k, v in source.items() if k not in names},
        {k: v for k, v in source.items() if k in names},
    )


def seal_dataset(session: Session, dataset_id: int, kept: Sequence[str], key: bytes | None) -> int:
    """Seal a dataset's plaintext originals (a policy was just attached); returns how many.

    Items with a mapping hold de-identified text already (an earlier policy) and are left so.

    Raises:
        KeyUnavailable: there are originals to seal and no PII_KEY.
    """
    plain = (
        select(Item.id, Item.text, Item.source, Item.text_hash)
        .outerjoin(PiiMapping, PiiMapping.item_id == Item.id)
        .where(Item.dataset_id == dataset_id, Item.sealed.is_(None), PiiMapping.item_id.is_(None))
        .order_by(Item.id)
        .limit(BATCH)
    )
    done, after = 0, 0
    while rows := session.execute(plain.where(Item.id > after)).tuples().all():
        if key is None:
            raise KeyUnavailable("PII_KEY is not set: the originals of a dataset with a policy are kept encrypted")
        moved: list[tuple[int, str, str]] = []
        for item_id, text, source, old in rows:
            readable, hidden = split_kept(dict(source or {}), kept)
            session.execute(
                update(Item).where(Item.id == item_id).values(text="", source=readable, sealed=seal(text, hidden, key))
            )
            moved.append((item_id, old, digest(text, key)))
        # eval membership, snapshots, experiments follow the keyed hash; raw text's vectors go
        move_hashes(session, dataset_id, moved)
        done += len(rows)
        after = rows[-1][0]
    return done


def open_dataset(session: Session, dataset_id: int, keys: Keys | None) -> int:
    """Open a dataset's seals (decided: no personal data): the originals are stored as uploaded.

    Raises:
        KeyUnavailable: there are seals and no key opens them.
    """
    sealed = (
        select(Item.id, Item.sealed, Item.source)
        .where(Item.dataset_id == dataset_id, Item.sealed.is_not(None))
        .order_by(Item.id)
        .limit(BATCH)
    )
    done = 0
    while rows := session.execute(sealed).tuples().all():
        if not keys:
            raise KeyUnavailable("PII_KEY is not set: it is needed to open the dataset's sealed originals")
        stored: list[tuple[int, str]] = []
        for item_id, blob, source in rows:
            opened = unseal(blob, keys)
            session.execute(
                update(Item)
                .where(Item.id == item_id)
                .values(text=opened.text, source={**dict(source or {}), **opened.kept}, sealed=None)
            )
            stored.append((item_id, opened.text))
        rehash(session, dataset_id, stored)  # plain sha256 again, apart from any text already there
        done += len(rows)
    return done

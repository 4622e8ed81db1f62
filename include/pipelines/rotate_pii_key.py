"""rotate_pii_key: re-encrypt every de-identification mapping and sealed original with the new PII_KEY.

To rotate: set the new key as ``PII_KEY`` and the old one in ``PII_KEY_PREVIOUS`` (every web
and Airflow process), run this pipeline, then remove ``PII_KEY_PREVIOUS``. Meanwhile mappings
open with either key (``MultiFernet``), so reveals, originals exports and de-identification go
on. It commits batch by batch and is idempotent: a rerun re-encrypts what is left (what is
already under the new key is encrypted again with it). When every mapping is done, the new
key's fingerprint is recorded, so a start with the old key alone is refused.

Not re-keyed: the ``hash`` operator's pseudonyms already in texts (they are HMACs under the key
they were made with; new texts get new ones) and the ``encrypt`` operator's tokens in texts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy import text as sql_text

from include.config import Settings
from include.db.models import Item, PiiMapping
from include.db.session import session_scope
from include.pii.mapping import MappingError, rotate
from include.pipelines.catalog import NoValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services import pii
from include.services.key_check import check_pii_key, record_rotated
from include.services.sealing import digest, reseal, unseal

BATCH = 500


def run_rotate_pii_key(db_url: str, run: RunRef, settings: Settings, values: NoValues) -> dict[str, Any]:
    """The ``rotate_pii_key`` job."""
    with tracked_job(db_url, "rotate_pii_key", run, values) as job:
        keys = pii.keys_of(settings.pii_key, settings.pii_key_previous)
        if len(keys) == 1:
            raise SkipStep("PII_KEY_PREVIOUS is not set: there is no earlier key to rotate from")
        with session_scope(db_url) as session:
            check_pii_key(session, keys[0], keys[1:])
            total = int(session.scalar(select(func.count()).select_from(PiiMapping)) or 0)
        done, after = 0, 0
        while True:
            with session_scope(db_url) as session:
                batch = session.execute(
                    select(PiiMapping.item_id, PiiMapping.mapping)
                    .where(PiiMapping.item_id > after)
                    .order_by(PiiMapping.item_id)
                    .limit(BATCH)
                ).all()
                for item_id, mapping in batch:
                    try:
                        rotated = rotate(mapping, keys)
                    except MappingError as exc:
                        raise pii.KeyUnavailable(f"item {item_id}: {exc}") from None
                    session.execute(update(PiiMapping).where(PiiMapping.item_id == item_id).values(mapping=rotated))
            if not batch:
                break
            done += len(batch)
            after = batch[-1][0]
            job.progress(f"re-encrypted {done} of {total} mappings", rotated=done, total=total)
        resealed = _reseal(db_url, keys)
        with session_scope(db_url) as session:
            record_rotated(session, keys[0])
        job.done(
            f"re-encrypted {done} mappings and {resealed} sealed originals with the new PII_KEY: "
            "PII_KEY_PREVIOUS can be removed",
            rotated=done,
            resealed=resealed,
        )
        job.result = {"rotated": done, "resealed": resealed}
    return job.result


def _reseal(db_url: str, keys: tuple[bytes, ...]) -> int:
    """Sealed originals (items not de-identified yet) under the new key, and their keyed hashes
    too (so a new upload of the same text is still found a duplicate). A hash another item of
    the dataset already holds under the new key stays old: that item is the same text."""
    done, after = 0, 0
    while True:
        with session_scope(db_url) as session:
            batch = session.execute(
                select(Item.id, Item.sealed)
                .where(Item.sealed.is_not(None), Item.id > after)
                .order_by(Item.id)
                .limit(BATCH)
            ).all()
            for item_id, blob in batch:
                assert blob is not None  # selected so
                fresh = digest(unseal(blob, keys).text, keys[0])
                session.execute(update(Item).where(Item.id == item_id).values(sealed=reseal(blob, keys)))
                session.execute(
                    sql_text(
                        "UPDATE items i SET text_hash = :fresh WHERE i.id = :id AND NOT EXISTS "
                        "(SELECT 1 FROM items o WHERE o.dataset_id = i.dataset_id AND o.text_hash = :fresh)"
                    ),
                    {"fresh": fresh, "id": item_id},
                )
        if not batch:
            return done
        done += len(batch)
        after = batch[-1][0]

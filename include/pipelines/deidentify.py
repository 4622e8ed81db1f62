"""deidentify: replace the personal data of a dataset's pending items, by its policy.

Batch by batch: each item's text is replaced by its de-identified form and the mapping to the
originals is stored encrypted (PII_KEY); each batch commits, so an interruption keeps the
finished ones. Items de-identified under an earlier version of the policy start again from
their originals.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from include.config import Settings
from include.db.session import session_scope
from include.pii.engine import deidentify
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.services import pii
from include.services.datasets import datasets_with_policy, get_dataset
from include.services.key_check import check_pii_key

log = logging.getLogger(__name__)

BATCH = 200


def run_deidentify(db_url: str, run: RunRef, settings: Settings, values: AnyDatasetValues) -> dict[str, Any]:
    """The ``deidentify`` job for one dataset, or every dataset with a policy."""
    dataset_id = values.dataset_id
    with tracked_job(db_url, "deidentify", run, values) as job:
        with session_scope(db_url) as session:
            if dataset_id is not None and get_dataset(session, dataset_id).pii_policy_id is None:
                raise SkipStep(f"dataset {dataset_id} has no de-identification policy")
            ids = [dataset_id] if dataset_id is not None else datasets_with_policy(session)
            waiting = {i: pii.pending_count(session, i) for i in ids}
        if not sum(waiting.values()):
            raise SkipStep("every item is de-identified already")
        key = pii.key_of(settings.pii_key)
        previous = pii.keys_of(settings.pii_key, settings.pii_key_previous)[1:]  # a rotation under way
        with session_scope(db_url) as session:
            check_pii_key(session, key, previous)  # never write mappings under another key than the stored ones
        found: Counter[str] = Counter()
        done = 0
        for one, count in waiting.items():
            if count:
                done += _deidentify_dataset(db_url, settings, one, key, found, job, done, sum(waiting.values()))
        held = found.pop("held", 0)
        summary = ", ".join(f"{n} {entity}" for entity, n in found.most_common()) or "nothing to replace"
        message = f"de-identified {done - held} items: {summary}"
        if held:
            # Failing closed: those items stay pending, so the dataset waits; the page says why.
            message += f"; {held} held for review (the LLM recognizer could not be trusted with them)"
        job.done(message, found=dict(found), held=held)
        job.result = {"deidentified": done - held, "held": held, "found": dict(found)}
    return job.result


def _kept_columns(
    batch: list[dict[str, Any]], kept: set[str], policy: Any, key: bytes, recognizer: Any
) -> list[dict[str, Any] | None]:
    """Each item's source with its kept text columns de-identified by the same policy (None: one
    was held); the columns a dataset keeps may hold personal data as well as the text."""
    if not kept:
        return list(batch)
    cells = [(i, k, v) for i, source in enumerate(batch) for k, v in source.items() if k in kept and isinstance(v, str)]
    results = deidentify(
        [v for _, _, v in cells], policy.entities, key=key, locale=policy.locale, llm_recognizer=recognizer
    )
    out: list[dict[str, Any] | None] = [dict(source) for source in batch]
    for (i, column, _), result in zip(cells, results, strict=True):
        row = out[i]
        if row is not None:
            out[i] = None if result.held is not None else {**row, column: result.text}
    return out


def _deidentify_dataset(
    db_url: str,
    settings: Settings,
    dataset_id: int,
    key: bytes,
    found: Counter[str],
    job: JobHandle,
    done: int,
    total: int,
) -> int:
    """De-identify one dataset's pending items batch by batch; returns how many."""
    keyring = pii.keys_of(settings.pii_key, settings.pii_key_previous)  # opens what earlier versions wrote
    with session_scope(db_url) as session:
        dataset = get_dataset(session, dataset_id)
        policy = pii.get_policy(session, dataset.pii_policy_id)  # type: ignore[arg-type]
        kept = set(dataset.keep_columns or ())
        session.expunge(policy)
    recognizer = None
    if policy.use_llm:
        from include.pii.llm import llm_recognizer

        recognizer = llm_recognizer(settings)
    after, here = 0, 0
    while True:
        with session_scope(db_url) as session:
            batch = pii.pending_items(session, dataset_id, after_id=after, limit=BATCH)
            if not batch:
                return here
            opened = [pii.original_of(item, keyring) for item in batch]
            originals = [text for text, _ in opened]
            results = deidentify(originals, policy.entities, key=key, locale=policy.locale, llm_recognizer=recognizer)
            sources = _kept_columns([source for _, source in opened], kept, policy, key, recognizer)
            stored: list[tuple[int, str]] = []
            for item, result, source in zip(batch, results, sources, strict=True):
                if result.held is not None or source is None:
                    pii.hold(session, item.id, result.held or "a kept column could not be de-identified")
                    found["held"] += 1
                    continue
                # a sealed item's readable source lacks its kept columns: store it whole again
                whole = kept or item.sealed is not None
                pii.store(session, item.id, result, policy, key, source=source if whole else None)
                found.update(r.entity for r in result.replacements)
                stored.append((item.id, result.text))
            pii.rehash(session, dataset_id, stored)
        here += len(batch)
        after = batch[-1].id
        job.progress(f"de-identified {done + here} of {total} items", deidentified=done + here, total=total)

"""Deliver the label outbox to Label Studio (the rules are in include.services.label_outbox).

``deliver_due`` is one round: claim due entries (committed), look up what Label Studio already
holds for their tasks (one request per project), create or update the annotations, record the
outcome (committed). It can die at any point: a claimed entry comes back when its lease ends,
and the lookup finds an annotation an earlier round created. :class:`OutboxDispatcher` runs
rounds in a thread: woken right after a label is committed, and every few seconds anyway.

A round writes only while it holds a delivery slot (``LS_WRITE_CONCURRENCY`` over all
processes), and right before each write it records the webhook Label Studio will send back, so
that echo starts no export (include.services.webhooks).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from include.db.session import session_scope
from include.labelstudio.client import (
    LabelStudioClient,
    LabelStudioError,
    LabelStudioNotFound,
    LabelStudioUnavailable,
)
from include.labelstudio.label_config import choice_result, label_of
from include.services import label_outbox, ls_identity, webhooks
from include.services.label_outbox import Delivery
from include.workers.pump import Pump

log = logging.getLogger(__name__)

BATCH = 50


@dataclass
class Round:
    """What one delivery round did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # claimed again by another dispatcher before this one reached it
    error: str = ""
    busy: bool = False  # every delivery slot was taken: another round is writing


def deliver_due(db_url: str, client: LabelStudioClient, *, limit: int = BATCH, slots: int = 1) -> Round:
    """Deliver up to ``limit`` due entries, if one of ``slots`` delivery slots is free; returns
    what happened."""
    with label_outbox.delivery_slot(db_url, slots) as held:
        return _deliver_batch(db_url, client, limit) if held else Round(busy=True)


Outcome = tuple[Delivery, int | None, str, bool]  # the entry, its Label Studio id or None, error, permanent


def _deliver_batch(db_url: str, client: LabelStudioClient, limit: int) -> Round:
    """One batch, Label Studio's writes one after another; the platform's own bookkeeping (the
    lease and expected echo before each write, the outcome after it) runs on a second thread
    meanwhile, so the writer never waits for PostgreSQL between two writes. Why a thread of our
    own: the overlap is exactly one step deep and ordered, which a pool with one worker gives."""
    with session_scope(db_url) as session:
        batch = label_outbox.claim(session, limit)
        if batch:  # a project without a webhook never answers: its expectations lapse here too
            webhooks.forget_lapsed_echoes(session)
    result = Round(claimed=len(batch))
    if not batch:
        return result
    outcomes: list[Outcome] = []
    changed: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-books") as books:
        recorded: list[Future[None]] = []

        def settle(outcome: Outcome, echo: int | None = None) -> None:
            outcomes.append(outcome)
            unused = echo if outcome[1] is None else None  # nothing was written: no webhook comes
            recorded.append(books.submit(_record, db_url, outcome, unused))

        try:
            changed = _changed_projects(db_url, client, batch)
            for d in batch:
                if d.project_id in changed:
                    settle((d, None, changed[d.project_id], False))
            batch = [d for d in batch if d.project_id not in changed]
            ls_users = _ls_user_ids(db_url, client, batch)
            found = _already_in_label_studio(client, batch, ls_users)
            plans = [(d, _writes(d, found.get(d.entry_id))) for d in batch]
            ahead = books.submit(_prepare, db_url, *plans[0]) if plans else None
            for k, (delivery, _) in enumerate(plans):
                assert ahead is not None
                ours, echo = ahead.result()
                ahead = books.submit(_prepare, db_url, *plans[k + 1]) if k + 1 < len(plans) else None
                if not ours:
                    result.skipped += 1  # another dispatcher claimed it after our lease ran out
                    continue
                try:
                    ls_id = _deliver(client, delivery, ls_users[delivery.user_id], found.get(delivery.entry_id))
                    settle((delivery, ls_id, "", False))
                except LabelStudioNotFound as exc:
                    settle((delivery, None, f"the task is gone from Label Studio: {exc}", True), echo)
                except LabelStudioUnavailable:
                    if ahead is not None:  # prepared, never sent: its expected echo must not wait
                        _, next_echo = ahead.result()
                        recorded.append(books.submit(_drop_echo, db_url, next_echo))
                    settle((delivery, None, "", False), echo)
                    raise  # Label Studio is down: the rest of the batch would fail the same way
                except LabelStudioError as exc:
                    settle((delivery, None, str(exc), False), echo)
        except LabelStudioError as exc:
            done = {d.entry_id for d, *_ in outcomes}
            for d in batch:
                if d.entry_id not in done:
                    settle((d, None, str(exc), False))
            result.error = str(exc)
        for future in recorded:
            future.result()  # a database error surfaces here, as it did inline
    if changed:
        result.error = result.error or next(iter(changed.values()))
    for _delivery, written, _error, permanent in outcomes:
        if written is not None:
            result.delivered += 1
        else:
            result.dead += permanent
            result.failed += not permanent
    if result.error:
        log.warning("label outbox: %s of %s labels wait for Label Studio: %s", result.failed, len(batch), result.error)
    return result


def _prepare(db_url: str, delivery: Delivery, writes: bool) -> tuple[bool, int | None]:
    """Renew the entry's lease right before its write and, when it will write, record the
    webhook Label Studio sends back; returns (still ours, the expected echo's id)."""
    with session_scope(db_url) as session:
        if not label_outbox.renew(session, delivery):
            return False, None
        return True, webhooks.expect_echo(session, delivery.project_id) if writes else None


def _record(db_url: str, outcome: Outcome, unused_echo: int | None) -> None:
    delivery, ls_id, error, permanent = outcome
    with session_scope(db_url) as session:
        if ls_id is not None:
            label_outbox.delivered(session, delivery, ls_id)
        else:
            label_outbox.failed(session, delivery, error, permanent=permanent)
        if unused_echo is not None:
            webhooks.drop_echo(session, unused_echo)


def _drop_echo(db_url: str, echo: int | None) -> None:
    if echo is not None:
        with session_scope(db_url) as session:
            webhooks.drop_echo(session, echo)


def _changed_projects(db_url: str, client: LabelStudioClient, batch: list[Delivery]) -> dict[int, str]:
    """Projects of the batch that are not the platform's any more (a new or reset Label Studio),
    with why: their labels wait instead of landing on another dataset's tasks."""
    changed: dict[int, str] = {}
    for project_id in sorted({d.project_id for d in batch}):
        try:
            with session_scope(db_url) as session:
                ls_identity.check_project(session, client, project_id)
        except ls_identity.LabelStudioChanged as exc:
            changed[project_id] = str(exc)
    return changed


def _ls_user_ids(db_url: str, client: LabelStudioClient, batch: list[Delivery]) -> dict[int, int]:
    """Each annotator's Label Studio user (found by email or created), remembered on the user."""
    known = {d.user_id: d.ls_user_id for d in batch if d.ls_user_id is not None}
    missing = {d.user_id: d for d in batch if d.ls_user_id is None}
    if missing:
        by_email = {str(u.get("email", "")).lower(): int(u["id"]) for u in client.list_users()}
        with session_scope(db_url) as session:
            for user_id, d in missing.items():
                ls_id = by_email.get(d.email.lower())
                if ls_id is None:
                    ls_id = int(client.create_user(d.email, d.username, first_name=d.username)["id"])
                label_outbox.set_ls_user(session, user_id, ls_id)
                known[user_id] = ls_id
    return known


def _already_in_label_studio(
    client: LabelStudioClient, batch: list[Delivery], ls_users: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """For entries without a Label Studio id: the annotation Label Studio already has for them,
    either created by an earlier delivery (its ``import_id`` is the entry's id) or made by the
    same person in Label Studio's own UI."""
    unknown = [d for d in batch if d.ls_annotation_id is None]
    by_project: dict[int, list[Delivery]] = defaultdict(list)
    for d in unknown:
        by_project[d.project_id].append(d)
    found: dict[int, dict[str, Any]] = {}
    for project_id, deliveries in by_project.items():
        tasks = {int(t["id"]): t for t in client.tasks_by_id(project_id, [d.ls_task_id for d in deliveries])}
        for d in deliveries:
            annotations = (tasks.get(d.ls_task_id) or {}).get("annotations") or []
            mine = [a for a in annotations if a.get("import_id") == d.entry_id]
            mine = mine or [
                a
                for a in annotations
                if _user_id(a.get("completed_by")) == ls_users[d.user_id]
                and bool(a.get("ground_truth")) == d.ground_truth
                and bool(a.get("was_cancelled")) == d.cancelled
            ]
            if mine:
                found[d.entry_id] = min(mine, key=lambda a: int(a["id"]))
    return found


def _user_id(completed_by: Any) -> int | None:
    if isinstance(completed_by, dict):
        return int(completed_by["id"]) if completed_by.get("id") is not None else None
    return int(completed_by) if isinstance(completed_by, int) else None


def _writes(d: Delivery, existing: dict[str, Any] | None) -> bool:
    """Whether :func:`_deliver` will write (and Label Studio send a webhook back)."""
    return existing is None or _differs(d, existing)


def _differs(d: Delivery, existing: dict[str, Any]) -> bool:
    return label_of(existing.get("result")) != (None if d.cancelled else d.label) or (
        bool(existing.get("was_cancelled")) != d.cancelled
    )


def _deliver(client: LabelStudioClient, d: Delivery, ls_user: int, existing: dict[str, Any] | None) -> int:
    """Create or update the annotation in Label Studio; returns its id. A skip is Label Studio's
    own: a cancelled annotation without a result."""
    result = [] if d.cancelled else choice_result(d.label)
    if existing is not None:
        if _differs(d, existing):
            client.update_annotation(int(existing["id"]), result, lead_time=d.lead_time, was_cancelled=d.cancelled)
        return int(existing["id"])
    if d.ls_annotation_id is not None:
        try:
            client.update_annotation(d.ls_annotation_id, result, lead_time=d.lead_time, was_cancelled=d.cancelled)
            return d.ls_annotation_id
        except LabelStudioNotFound:
            log.info("annotation %s was deleted in Label Studio; creating it again", d.ls_annotation_id)
    created = client.create_annotation(
        d.ls_task_id,
        result,
        completed_by=ls_user,
        ground_truth=d.ground_truth,
        import_id=d.entry_id,
        lead_time=d.lead_time,
        was_cancelled=d.cancelled,
    )
    return int(created["id"])


class OutboxDispatcher(Pump):
    """Delivers the outbox in a background thread: at once when woken, and every ``sweep`` seconds.

    Safe to run in several processes at the same time (entries are claimed with SKIP LOCKED).
    """

    name = "label-outbox"

    def __init__(
        self,
        db_url: str,
        client_factory: Callable[[], LabelStudioClient],
        *,
        sweep: float = 5.0,
        batch: int = BATCH,
        slots: int = 1,
    ) -> None:
        super().__init__(sweep)
        self.db_url = db_url
        self.client_factory = client_factory
        self.batch = batch
        self.slots = slots
        self._client: LabelStudioClient | None = None

    def round(self) -> bool:
        self._client = self._client or self.client_factory()
        outcome = deliver_due(self.db_url, self._client, limit=self.batch, slots=self.slots)
        return outcome.claimed == self.batch and not outcome.error  # more may be due: no pause

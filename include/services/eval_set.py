"""The frozen evaluation set of a dataset: labeled texts no training run ever uses.

Membership is decided by text hash, so it is the same on every run, after re-imports and
re-exports: a labeled text joins when its hash (salted with "eval") falls below the dataset's
``eval_fraction``, so each label contributes the same share. A label with fewer members than
``eval_min_per_label`` is topped up with its lowest-hash texts. Two rules keep the set honest:

* membership is sticky: a member stays (until an admin drops it), so a model's number stays
  comparable with the next model's;
* a text a training run has already used never joins, however the policy changes.

Admins can add a labeled task as a gold item or drop one. Tasks in conflict, unlabeled or
deleted stay out until they are labeled. The version is a hash of the members and their labels:
numbers are comparable only within one version.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Dataset, EvalItem, Item, Task, TaskStatus
from include.errors import Invalid
from include.params import ParamSpec, Values, param
from include.services.label_policy import basis_counts
from include.services.task_queries import get_task

EVAL_FRACTION = ParamSpec(
    "eval_fraction", "Share kept for evaluation", "float", 0.2, minimum=0.0, maximum=0.5, help="of the labeled items",
    percent=True,
)  # fmt: skip
EVAL_MIN_PER_LABEL = ParamSpec("eval_min_per_label", "At least, per label", "int", 10, minimum=0, maximum=10_000)
EVAL_CAP = ParamSpec("eval_cap", "At most, in all", "int", 1000, minimum=10, maximum=1_000_000)


@dataclass(frozen=True, kw_only=True)
class EvalPolicy(Values):
    """How much of the labeled data is reserved for judging models."""

    eval_fraction: float = param(EVAL_FRACTION)
    eval_min_per_label: int = param(EVAL_MIN_PER_LABEL)
    eval_cap: int = param(EVAL_CAP)


EVAL_POLICY = EvalPolicy.specs()


class EvalSetError(Invalid):
    """An evaluation-set change that cannot be made; the message says why."""


def hash_rank(text_hash: str) -> float:
    """Where a text falls in [0, 1): stable for a text, independent of the order labels arrive in."""
    return int(hashlib.sha256(f"eval:{text_hash}".encode()).hexdigest()[:15], 16) / 16**15


@dataclass(frozen=True)
class EvalSet:
    version: str
    examples: list[tuple[str, str]]  # (text hash, label) of usable members, by hash
    per_label: dict[str, int]
    excluded: int = 0
    # Members whose label does not count for evaluation yet (the dataset asks for agreed or
    # reviewed labels): they wait in the review queue and stay out of training meanwhile.
    waiting: int = 0

    @property
    def size(self) -> int:
        return len(self.examples)

    @property
    def hashes(self) -> set[str]:
        return {h for h, _ in self.examples}


def version_of(examples: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for text_hash, label in sorted(examples):
        digest.update(f"{text_hash}:{label};".encode())
    return digest.hexdigest()[:12] if examples else "empty"


def _labeled(session: Session, dataset: Dataset) -> list[tuple[str, str, bool]]:
    """(text hash, label, already used in training) of the dataset's labeled tasks."""
    rows = session.execute(
        select(Item.text_hash, Task.label, Task.first_trained_at.is_not(None))
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset.id, Task.status == TaskStatus.LABELED, Task.label.in_(list(dataset.labels)))
    ).tuples()
    return [(str(h), str(label), bool(trained)) for h, label, trained in rows]


def _members(session: Session, dataset_id: int) -> dict[str, EvalItem]:
    return {m.text_hash: m for m in session.scalars(select(EvalItem).where(EvalItem.dataset_id == dataset_id))}


def refresh(session: Session, dataset: Dataset) -> EvalSet:
    """Admit newly labeled texts the policy selects; returns the current set (members labeled now)."""
    labeled = _labeled(session, dataset)
    members = _members(session, dataset.id)
    current = Counter(label for h, label, _ in labeled if h in members and not members[h].excluded)
    room = max(0, dataset.eval_cap - sum(current.values()))
    fresh = sorted(
        ((hash_rank(h), h, label) for h, label, trained in labeled if h not in members and not trained),
        key=lambda row: row[0],
    )
    chosen: list[tuple[str, str]] = []
    for rank, text_hash, label in fresh:
        if len(chosen) >= room:
            break
        if rank < dataset.eval_fraction:
            chosen.append((text_hash, "sample"))
            current[label] += 1
    picked = {h for h, _ in chosen}
    for label in dataset.labels:  # top up thin labels with their lowest-ranked untrained texts
        for _, text_hash, lbl in fresh:
            if current[label] >= dataset.eval_min_per_label or len(chosen) >= room:
                break
            if lbl == label and text_hash not in picked:
                chosen.append((text_hash, "top_up"))
                picked.add(text_hash)
                current[label] += 1
    if chosen:
        session.execute(
            insert(EvalItem)
            .values([{"dataset_id": dataset.id, "text_hash": h, "source": source} for h, source in chosen])
            .on_conflict_do_nothing()
        )
    return current_set(session, dataset)


def current_set(session: Session, dataset: Dataset) -> EvalSet:
    """The evaluation set as it stands: members whose task is labeled (conflicts wait) with a
    label that counts under the dataset's evaluation policy (include.services.label_policy)."""
    rows = (
        session.execute(
            select(EvalItem.text_hash, Task.label, EvalItem.excluded, Task.label_basis)
            .join(Item, (Item.text_hash == EvalItem.text_hash) & (Item.dataset_id == EvalItem.dataset_id))
            .join(Task, Task.item_id == Item.id)
            .where(
                EvalItem.dataset_id == dataset.id,
                Task.status == TaskStatus.LABELED,
                Task.label.in_(list(dataset.labels)),
            )
            .order_by(EvalItem.text_hash)
        )
        .tuples()
        .all()
    )
    policy = dataset.eval_labels
    examples = [
        (str(h), str(label)) for h, label, excluded, basis in rows if not excluded and basis_counts(policy, basis)
    ]
    excluded = sum(1 for _, _, ex, _ in rows if ex)
    waiting = sum(1 for _, _, ex, basis in rows if not ex and not basis_counts(policy, basis))
    counts = Counter(label for _, label in examples)
    per_label = {label: counts.get(label, 0) for label in dataset.labels}
    return EvalSet(version_of(examples), examples, per_label, excluded, waiting)


def eval_hashes(session: Session, dataset_id: int) -> set[str]:
    """Every text reserved for evaluation (labeled or not, dropped members too): training leaves
    them all out."""
    return {str(h) for h in session.scalars(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id))}


MEMBER = ParamSpec("member", "In the evaluation set", "bool", help="true: a gold item; false: dropped")


@dataclass(frozen=True, kw_only=True)
class Membership(Values):
    """Whether a labeled task is a gold item of its dataset's evaluation set."""

    member: bool = param(MEMBER)


def set_task_membership(session: Session, task_id: int, membership: Membership, by: int | None) -> tuple[Dataset, str]:
    """:func:`set_membership` for a task named by its id; returns its dataset and what happened.

    Raises:
        TaskNotFound: no such task. EvalSetError: the task cannot be (or is not) a member.
    """
    task = get_task(session, task_id)
    dataset = session.get_one(Dataset, task.dataset_id)
    return dataset, set_membership(session, dataset, task_id, membership.member, by)


def set_membership(session: Session, dataset: Dataset, task_id: int, member: bool, by: int | None) -> str:
    """Add a labeled task as a gold item, or drop it from the set; returns what happened."""
    row = session.execute(
        select(Item.text_hash, Task.status, Task.first_trained_at)
        .join(Item, Item.id == Task.item_id)
        .where(Task.id == task_id, Task.dataset_id == dataset.id)
    ).first()
    if row is None:
        raise EvalSetError(f"task {task_id} is not in dataset {dataset.name}")
    text_hash, status, trained = row
    if member:
        if status != TaskStatus.LABELED:
            raise EvalSetError(f"task {task_id} is {status.value}: only labeled tasks can be evaluation items")
        if trained is not None:
            raise EvalSetError(
                f"task {task_id} was used to train a model on {trained:%Y-%m-%d}: it cannot judge models fairly"
            )
        stmt = insert(EvalItem).values(dataset_id=dataset.id, text_hash=text_hash, source="gold", added_by=by)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["dataset_id", "text_hash"], set_={"excluded": False, "added_by": by}
            )
        )
        return f"task {task_id} is now an evaluation item"
    result = session.execute(
        update(EvalItem)
        .where(EvalItem.dataset_id == dataset.id, EvalItem.text_hash == text_hash)
        .values(excluded=True, added_by=by)
    )
    if not getattr(result, "rowcount", 0):
        raise EvalSetError(f"task {task_id} is not in the evaluation set")
    return f"task {task_id} was dropped from the evaluation set (and stays out of training)"


def member_task_ids(session: Session, dataset_id: int) -> set[int]:
    """Task ids currently in the set (for marking them on the tasks page)."""
    rows = session.scalars(
        select(Task.id)
        .join(Item, Item.id == Task.item_id)
        .join(EvalItem, (EvalItem.text_hash == Item.text_hash) & (EvalItem.dataset_id == Task.dataset_id))
        .where(Task.dataset_id == dataset_id, EvalItem.excluded.is_(False))
    )
    return {int(i) for i in rows}


def mark_trained(session: Session, dataset_id: int, text_hashes: list[str]) -> None:
    """These texts were used by a training run: they may never join the evaluation set."""
    if text_hashes:
        session.execute(
            update(Task)
            .where(
                Task.dataset_id == dataset_id,
                Task.first_trained_at.is_(None),
                Task.item_id.in_(select(Item.id).where(Item.dataset_id == dataset_id, Item.text_hash.in_(text_hashes))),
            )
            .values(first_trained_at=datetime.now(UTC))
        )


def set_policy(session: Session, dataset: Dataset, policy: EvalPolicy) -> EvalSet:
    """Change the policy and refresh the set at once (members stay members); returns the set."""
    dataset.eval_fraction = policy.eval_fraction
    dataset.eval_min_per_label = policy.eval_min_per_label
    dataset.eval_cap = policy.eval_cap
    session.flush()
    return refresh(session, dataset)


def apply_policy(session: Session, dataset: Dataset, policy: EvalPolicy) -> str:
    """:func:`set_policy` as a setting: returns the sentence that confirms it."""
    evaluation = set_policy(session, dataset, policy)
    return f"Evaluation policy saved: {evaluation.size} evaluation items, version {evaluation.version}."


def count_members(session: Session, dataset_id: int) -> int:
    return int(
        session.scalar(select(func.count()).where(EvalItem.dataset_id == dataset_id, EvalItem.excluded.is_(False))) or 0
    )

"""Hidden gold: a share of each annotator's queue is tasks whose label is known, and their
answers measure the annotator.

* **Gold items** are the dataset's evaluation-set members whose label counts for evaluation
  (agreed or reviewed by default, include.services.label_policy), admin-marked gold included.
* **Hidden**: a gold check is shared with the annotator like an agreement task; their lists,
  pages and API show it as a task to do, like any other, never its known label.
* **Apart from labels**: the answer is a :class:`GoldAnswer`, not an annotation. It never reaches
  Label Studio, never votes on the task, never trains (so gold answers can never become training
  labels for the annotator's own items).
* **Alert**: after each gold answer and each review of their labels, the annotator's checked
  answers (gold, and reviewers' verdicts) are counted; when their accuracy's 95 % Wilson
  interval lies wholly below the dataset's threshold (the upper end under it) an alert opens,
  shown on the dashboard and as a job row (never before ``MIN_ANSWERS`` answers). The
  interval's *upper* end, not its lower one, decides: a lower end dips under any threshold
  while answers are few (5 of 5 right has a lower end of 0.57), so it would alarm every new
  annotator; ``bench/annotators.py`` measures how soon a weak annotator is caught this way and
  how rarely a good one is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import (
    JOB_STEP,
    Annotation,
    Dataset,
    EvalItem,
    ExtraAssignee,
    GoldAlert,
    GoldAnswer,
    Item,
    Job,
    JobStatus,
    Review,
    Task,
    TaskStatus,
    User,
)
from include.errors import NotFound
from include.params import ParamSpec, Values, param
from include.services.label_policy import counts

GOLD_SHARE = ParamSpec(
    "gold_share", "Hidden gold", "float", 0.05, minimum=0.0, maximum=0.5, percent=True,
    help="share of each annotator's queue that is gold items with a known label (0: none)",
)  # fmt: skip
GOLD_THRESHOLD = ParamSpec(
    "gold_threshold", "Gold accuracy to keep", "float", 0.8, minimum=0.3, maximum=1.0, percent=True,
    help="an alert opens when an annotator's gold accuracy is confidently below this",
)  # fmt: skip
Z = 1.959963984540054  # 95 % two-sided
# Fewer answers say too little about a person (one miss among the first answers would put the
# interval under a threshold of 0.8): nobody is alerted before this many.
MIN_ANSWERS = 10


@dataclass(frozen=True, kw_only=True)
class GoldSettings(Values):
    """How much of each queue is hidden gold, and the accuracy annotators should keep on it."""

    gold_share: float = param(GOLD_SHARE)
    gold_threshold: float = param(GOLD_THRESHOLD)


def apply_settings(session: Session, dataset: Dataset, settings: GoldSettings) -> str:
    dataset.gold_share, dataset.gold_threshold = settings.gold_share, settings.gold_threshold
    session.flush()
    return (
        f"Hidden gold saved: {settings.gold_share:.0%} of each queue, an alert below "
        f"{settings.gold_threshold:.0%} accuracy."
    )


class AlertNotFound(NotFound):
    """No open gold alert with that id."""


def wilson(correct: int, answered: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion (Wilson 1927), as scipy's
    ``binomtest(...).proportion_ci(method="wilson")`` gives it; written out because it is
    evaluated after every gold answer and on every performance page row, where building a
    scipy result object costs more than the page's queries."""
    if answered <= 0:
        return 0.0, 1.0
    p = correct / answered
    denominator = 1 + z * z / answered
    centre = (p + z * z / (2 * answered)) / denominator
    half = z * math.sqrt(p * (1 - p) / answered + z * z / (4 * answered * answered)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Standing:
    """An annotator's gold record on a dataset."""

    answered: int
    correct: int
    low: float
    high: float
    threshold: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None

    @property
    def below(self) -> bool:
        """Confidently below the threshold: the whole interval under it, after enough answers."""
        return self.answered >= MIN_ANSWERS and self.high < self.threshold


def standing(session: Session, dataset: Dataset, user_id: int) -> Standing:
    answered, correct = session.execute(
        select(func.count(), func.count().filter(GoldAnswer.correct)).where(
            GoldAnswer.dataset_id == dataset.id, GoldAnswer.user_id == user_id
        )
    ).one()
    low, high = wilson(int(correct), int(answered))
    return Standing(int(answered), int(correct), low, high, dataset.gold_threshold)


def checked(session: Session, dataset: Dataset, user_id: int) -> Standing:
    """Every checked answer of the user on the dataset: hidden gold, and reviewers' verdicts on
    their labels (accepted: right; fixed or rejected: wrong). A reviewer checks far more labels
    than gold covers, so the alert hears of a weak annotator much sooner than from gold alone
    (bench/annotators.py measures both)."""
    gold = standing(session, dataset, user_id)
    reviewed, accepted = session.execute(
        select(func.count(), func.count().filter(Review.verdict == "accepted"))
        .join(Task, Task.id == Review.task_id)
        .where(Task.dataset_id == dataset.id, Review.annotator_id == user_id)
    ).one()
    answered, correct = gold.answered + int(reviewed), gold.correct + int(accepted)
    low, high = wilson(correct, answered)
    return Standing(answered, correct, low, high, dataset.gold_threshold)


def _pool(dataset: Dataset) -> Any:
    """Task ids of the dataset's gold items: evaluation members whose label counts."""
    return (
        select(Task.id)
        .join(Item, Item.id == Task.item_id)
        .join(EvalItem, (EvalItem.dataset_id == Task.dataset_id) & (EvalItem.text_hash == Item.text_hash))
        .where(
            Task.dataset_id == dataset.id,
            Task.status == TaskStatus.LABELED,
            EvalItem.excluded.is_(False),
            counts(dataset.eval_labels),
        )
    )


def pool_size(session: Session, dataset: Dataset) -> int:
    return int(session.scalar(select(func.count()).select_from(_pool(dataset).subquery())) or 0)


def top_up(session: Session, dataset: Dataset, user: User) -> list[int]:
    """Give ``user`` the gold checks their queue is due: the dataset's ``gold_share`` of all their
    tasks (own and gold) in it, counted over time, so small assignments add up. Returns the new
    gold task ids (for the admin; the annotator is never told)."""
    if dataset.gold_share <= 0:
        return []
    own = session.scalar(select(func.count(Task.id)).where(Task.dataset_id == dataset.id, Task.assigned_to == user.id))
    given = session.scalar(
        select(func.count())
        .select_from(ExtraAssignee)
        .join(Task, Task.id == ExtraAssignee.task_id)
        .where(Task.dataset_id == dataset.id, ExtraAssignee.user_id == user.id, ExtraAssignee.gold.is_(True))
    )
    due = math.floor(dataset.gold_share / (1 - dataset.gold_share) * int(own or 0) + 0.5) - int(given or 0)
    if due <= 0:
        return []
    theirs = select(Annotation.task_id).where(Annotation.annotator_id == user.id)
    answered = select(GoldAnswer.task_id).where(GoldAnswer.user_id == user.id)
    shared = select(ExtraAssignee.task_id).where(ExtraAssignee.user_id == user.id)
    candidates = (
        _pool(dataset)
        .where(
            Task.id.not_in(theirs),
            Task.id.not_in(answered),
            Task.id.not_in(shared),
            (Task.assigned_to.is_(None)) | (Task.assigned_to != user.id),
        )
        # a stable spread: each annotator meets the gold items in their own order
        .order_by(func.md5(func.concat(str(user.id), ":", Item.text_hash)))
        .limit(due)
    )
    picked = [int(i) for i in session.scalars(candidates)]
    if not picked:
        return []
    # Two admins assigning to the same annotator at once may pick the same gold item: it is
    # given once (the other assignment simply gets one check less).
    added = session.scalars(
        insert(ExtraAssignee)
        .values([{"task_id": i, "user_id": user.id, "gold": True} for i in picked])
        .on_conflict_do_nothing()
        .returning(ExtraAssignee.task_id)
    )
    return [int(i) for i in added]


def is_check(session: Session, task_id: int, user_id: int) -> bool:
    """Whether the task is a hidden gold check for this user (answered or not)."""
    row = session.get(ExtraAssignee, (task_id, user_id))
    return row is not None and row.gold


def record_answer(session: Session, task: Task, user: User, label: str, lead_time: float | None) -> GoldAnswer | None:
    """Keep the user's answer on a gold check and check their standing; None when the item is no
    longer gold (its label changed or stopped counting): the check is dropped, nothing recorded."""
    dataset = session.get_one(Dataset, task.dataset_id)
    still_gold = session.scalar(_pool(dataset).where(Task.id == task.id)) is not None
    if not still_gold or task.label is None:
        session.execute(delete(ExtraAssignee).where(ExtraAssignee.task_id == task.id, ExtraAssignee.user_id == user.id))
        return None
    answer = session.scalar(select(GoldAnswer).where(GoldAnswer.task_id == task.id, GoldAnswer.user_id == user.id))
    if answer is None:
        answer = GoldAnswer(task_id=task.id, dataset_id=dataset.id, user_id=user.id, label=label, expected=task.label)
        session.add(answer)
    # a changed mind counts (the first answer is no more "theirs" than the last)
    answer.label, answer.expected, answer.correct, answer.lead_time = label, task.label, label == task.label, lead_time
    session.flush()
    check(session, dataset, user)
    return answer


def check(session: Session, dataset: Dataset, user: User) -> GoldAlert | None:
    """Open an alert when the user's checked answers (gold and reviews) are confidently below the
    dataset's threshold and none is open."""
    now = checked(session, dataset, user.id)
    if not now.below:
        return None
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gold-alert'), :u)"), {"u": user.id})
    open_alert = session.scalar(
        select(GoldAlert).where(
            GoldAlert.dataset_id == dataset.id, GoldAlert.user_id == user.id, GoldAlert.cleared_at.is_(None)
        )
    )
    if open_alert is not None:
        open_alert.answered, open_alert.accuracy, open_alert.upper = now.answered, now.accuracy or 0.0, now.high
        return open_alert
    alert = GoldAlert(
        dataset_id=dataset.id,
        user_id=user.id,
        answered=now.answered,
        accuracy=now.accuracy or 0.0,
        upper=now.high,
        threshold=now.threshold,
    )
    session.add(alert)
    # The job channel: the jobs page (and whatever watches it) hears of it too.
    moment = datetime.now(UTC)
    session.add(
        Job(
            step="gold_alert",
            kind=JOB_STEP,
            dataset_id=dataset.id,
            status=JobStatus.FAILED,
            message=(
                f"{user.username}'s accuracy on {dataset.name} is {now.accuracy:.0%} over {now.answered} checked "
                f"answers (hidden gold and reviews; 95 % interval {now.low:.0%} to {now.high:.0%}), below the "
                f"{now.threshold:.0%} to keep"
            ),
            counts={"answered": now.answered, "correct": now.correct, "user_id": user.id},
            started_at=moment,
            finished_at=moment,
        )
    )
    session.flush()
    return alert


def open_alerts(session: Session, dataset_id: int | None = None) -> list[tuple[GoldAlert, str, str]]:
    """Open alerts (of one dataset, or all) with the annotator's and the dataset's names."""
    stmt = (
        select(GoldAlert, User.username, Dataset.name)
        .join(User, User.id == GoldAlert.user_id)
        .join(Dataset, Dataset.id == GoldAlert.dataset_id)
        .where(GoldAlert.cleared_at.is_(None))
        .order_by(GoldAlert.raised_at.desc())
    )
    if dataset_id is not None:
        stmt = stmt.where(GoldAlert.dataset_id == dataset_id)
    return [(a, str(u), str(d)) for a, u, d in session.execute(stmt).all()]


def clear_alert(session: Session, alert_id: int, admin: User) -> GoldAlert:
    """An admin has dealt with it (talked to the annotator, retrained them); a new one opens if
    the next answers are still confidently below."""
    alert = session.scalar(select(GoldAlert).where(GoldAlert.id == alert_id, GoldAlert.cleared_at.is_(None)))
    if alert is None:
        raise AlertNotFound(f"no open gold alert {alert_id}")
    alert.cleared_at, alert.cleared_by = datetime.now(UTC), admin.id
    session.flush()
    return alert

"""Annotator performance on a dataset: throughput, time to label, gold accuracy, agreement with
others and with reviewers, skip and flag rates. One row per annotator, the same figures on the
admin's page (everyone), an annotator's page (only their own) and in the CSV download.

Every figure is a handful of grouped queries over the dataset's annotations, gold answers,
reviews and flags: the page costs the same with a thousand labels or a million.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from include.db.models import Annotation, Dataset, ExtraAssignee, GoldAnswer, Review, Task, TaskFlag, User
from include.errors import NotFound
from include.services import gold, quality

LEAD_BINS = (0, 2, 5, 10, 20, 40, 80, 160, 10**9)  # seconds: a histogram people can read


@dataclass
class AnnotatorFigures:
    """One annotator's figures on one dataset."""

    user_id: int
    username: str
    labels: int = 0
    per_day: dict[str, int] = field(default_factory=dict)  # "YYYY-MM-DD" -> labels (last 30 days)
    lead_p50: float | None = None
    lead_p90: float | None = None
    lead_histogram: list[int] = field(default_factory=list)  # counts per LEAD_BINS interval
    gold_answered: int = 0
    gold_correct: int = 0
    gold_low: float = 0.0
    gold_high: float = 1.0
    gold_trend: list[tuple[str, float, int]] = field(default_factory=list)  # (day, cumulative accuracy, answered)
    gold_alert: bool = False
    reviewed: int = 0
    accepted: int = 0
    fixed: int = 0
    rejected: int = 0
    skips: int = 0
    not_sure: int = 0
    flags: int = 0
    kappas: dict[str, float] = field(default_factory=dict)  # other annotator -> Cohen's kappa

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None

    @property
    def acceptance(self) -> float | None:
        """Share of reviewed labels a reviewer accepted as they were."""
        return self.accepted / self.reviewed if self.reviewed else None

    @property
    def skip_rate(self) -> float | None:
        seen = self.labels + self.skips + self.not_sure
        return (self.skips + self.not_sure) / seen if seen else None

    @property
    def flag_rate(self) -> float | None:
        seen = self.labels + self.flags
        return self.flags / seen if seen else None


@dataclass(frozen=True)
class Performance:
    dataset_id: int
    threshold: float
    annotators: list[AnnotatorFigures]


def report(session: Session, dataset: Dataset, *, user_id: int | None = None, days: int = 30) -> Performance:
    """Figures of every annotator with labels, gold answers or flags on the dataset (or one)."""
    people: dict[int, AnnotatorFigures] = {}

    def of(uid: int, name: str) -> AnnotatorFigures:
        if uid not in people:
            people[uid] = AnnotatorFigures(uid, name)
        return people[uid]

    mine = (Annotation.annotator_id == user_id) if user_id is not None else true()
    labeled = (
        Task.dataset_id == dataset.id,
        Annotation.was_cancelled.is_(False),
        Annotation.ground_truth.is_(False),
        Annotation.label.is_not(None),
        mine,
    )
    for uid, name, n in session.execute(
        select(User.id, User.username, func.count())
        .join(Annotation, Annotation.annotator_id == User.id)
        .join(Task, Task.id == Annotation.task_id)
        .where(*labeled)
        .group_by(User.id, User.username)
    ).tuples():
        of(int(uid), str(name)).labels = int(n)
    since = datetime.combine(datetime.now(UTC).date() - timedelta(days=days - 1), time.min, tzinfo=UTC)
    day = func.date_trunc("day", Annotation.created_at)
    for uid, name, when, n in session.execute(
        select(User.id, User.username, day, func.count())
        .join(Annotation, Annotation.annotator_id == User.id)
        .join(Task, Task.id == Annotation.task_id)
        .where(*labeled, Annotation.created_at >= since)
        .group_by(User.id, User.username, day)
        .order_by(day)
    ).tuples():
        of(int(uid), str(name)).per_day[when.strftime("%Y-%m-%d")] = int(n)
    _lead_times(session, dataset, user_id, of)
    _gold(session, dataset, user_id, of)
    _reviews(session, dataset, user_id, of)
    _flags(session, dataset, user_id, of)
    agreement = quality.agreement(session, dataset)
    names = {f.username: f for f in people.values()}
    for pair in agreement["pairs"]:
        for a, b in ((pair["a"], pair["b"]), (pair["b"], pair["a"])):
            if a in names:
                names[a].kappas[b] = float(pair["kappa"])
    alerted = {a.user_id for a, _, _ in gold.open_alerts(session, dataset.id)}
    for figures in people.values():
        figures.gold_alert = figures.user_id in alerted
    rows = sorted(people.values(), key=lambda f: f.username)
    return Performance(dataset.id, dataset.gold_threshold, rows)


def _lead_times(session: Session, dataset: Dataset, user_id: int | None, of: Any) -> None:
    """Percentiles and a histogram of seconds to label, from labels and gold answers alike."""
    mine_a = (Annotation.annotator_id == user_id) if user_id is not None else true()
    mine_g = (GoldAnswer.user_id == user_id) if user_id is not None else true()
    bucket_a = func.width_bucket(Annotation.lead_time, list(map(float, LEAD_BINS)))
    rows = session.execute(
        select(User.id, User.username, bucket_a, func.count())
        .join(Annotation, Annotation.annotator_id == User.id)
        .join(Task, Task.id == Annotation.task_id)
        .where(Task.dataset_id == dataset.id, Annotation.lead_time.is_not(None), mine_a)
        .group_by(User.id, User.username, bucket_a)
    ).tuples()
    bucket_g = func.width_bucket(GoldAnswer.lead_time, list(map(float, LEAD_BINS)))
    gold_rows = session.execute(
        select(User.id, User.username, bucket_g, func.count())
        .join(GoldAnswer, GoldAnswer.user_id == User.id)
        .where(GoldAnswer.dataset_id == dataset.id, GoldAnswer.lead_time.is_not(None), mine_g)
        .group_by(User.id, User.username, bucket_g)
    ).tuples()
    for uid, name, bucket, n in list(rows) + list(gold_rows):
        figures = of(int(uid), str(name))
        if not figures.lead_histogram:
            figures.lead_histogram = [0] * (len(LEAD_BINS) - 1)
        figures.lead_histogram[min(max(int(bucket), 1), len(LEAD_BINS) - 1) - 1] += int(n)
    pct = func.percentile_cont([0.5, 0.9]).within_group(Annotation.lead_time)
    for uid, name, (p50, p90) in session.execute(
        select(User.id, User.username, pct)
        .join(Annotation, Annotation.annotator_id == User.id)
        .join(Task, Task.id == Annotation.task_id)
        .where(Task.dataset_id == dataset.id, Annotation.lead_time.is_not(None), mine_a)
        .group_by(User.id, User.username)
    ).tuples():
        figures = of(int(uid), str(name))
        figures.lead_p50, figures.lead_p90 = float(p50), float(p90)


def _gold(session: Session, dataset: Dataset, user_id: int | None, of: Any) -> None:
    mine = (GoldAnswer.user_id == user_id) if user_id is not None else true()
    day = func.date_trunc("day", GoldAnswer.created_at)
    running: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for uid, name, when, n, right in session.execute(
        select(User.id, User.username, day, func.count(), func.count().filter(GoldAnswer.correct))
        .join(GoldAnswer, GoldAnswer.user_id == User.id)
        .where(GoldAnswer.dataset_id == dataset.id, mine)
        .group_by(User.id, User.username, day)
        .order_by(day)
    ).tuples():
        figures = of(int(uid), str(name))
        total = running[int(uid)]
        total[0] += int(n)
        total[1] += int(right)
        figures.gold_answered, figures.gold_correct = total
        figures.gold_trend.append((when.strftime("%Y-%m-%d"), total[1] / total[0], total[0]))
    for figures in [of(uid, "") for uid in running]:
        figures.gold_low, figures.gold_high = gold.wilson(figures.gold_correct, figures.gold_answered)


def _reviews(session: Session, dataset: Dataset, user_id: int | None, of: Any) -> None:
    mine = (Review.annotator_id == user_id) if user_id is not None else true()
    for uid, name, verdict, n in session.execute(
        select(User.id, User.username, Review.verdict, func.count())
        .join(Review, Review.annotator_id == User.id)
        .join(Task, Task.id == Review.task_id)
        .where(Task.dataset_id == dataset.id, mine)
        .group_by(User.id, User.username, Review.verdict)
    ).tuples():
        figures = of(int(uid), str(name))
        setattr(figures, str(verdict), getattr(figures, str(verdict)) + int(n))
        figures.reviewed += int(n)


def _flags(session: Session, dataset: Dataset, user_id: int | None, of: Any) -> None:
    mine = (TaskFlag.user_id == user_id) if user_id is not None else true()
    for uid, name, kind, n in session.execute(
        select(User.id, User.username, TaskFlag.kind, func.count())
        .join(TaskFlag, TaskFlag.user_id == User.id)
        .join(Task, Task.id == TaskFlag.task_id)
        .where(Task.dataset_id == dataset.id, mine)
        .group_by(User.id, User.username, TaskFlag.kind)
    ).tuples():
        figures = of(int(uid), str(name))
        if kind == "skip":
            figures.skips += int(n)
        elif kind == "not_sure":
            figures.not_sure += int(n)
        else:
            figures.flags += int(n)


def datasets_of(session: Session, user: User) -> list[Dataset]:
    """The datasets a user has (or had) tasks in: where their own figures are."""
    shared = select(ExtraAssignee.task_id).where(ExtraAssignee.user_id == user.id)
    ids = select(Task.dataset_id).where(or_(Task.assigned_to == user.id, Task.id.in_(shared))).distinct()
    return list(session.scalars(select(Dataset).where(Dataset.id.in_(ids)).order_by(Dataset.name)))


def dataset_of(session: Session, user: User, dataset_id: int | None) -> Dataset:
    """One of the user's datasets (the first when none is named).

    Raises:
        NotFound: not one of theirs (it looks the same as one that does not exist).
    """
    mine = datasets_of(session, user)
    chosen = next((d for d in mine if dataset_id is None or d.id == dataset_id), None)
    if chosen is None:
        raise NotFound("no such dataset among yours" if dataset_id is not None else "you have no tasks yet")
    return chosen


CSV_COLUMNS = (
    "username", "labels", "lead_p50_s", "lead_p90_s", "gold_answered", "gold_accuracy", "gold_low", "gold_high",
    "gold_alert", "reviewed", "accepted", "fixed", "rejected", "acceptance", "skips", "not_sure", "flags",
    "skip_rate", "flag_rate", "mean_kappa",
)  # fmt: skip


def csv_bytes(performance: Performance) -> bytes:
    """The table as CSV (UTF-8 with a BOM, for spreadsheets); usernames are the only text."""
    from include.services.export import neutralise

    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def num(value: float | None, digits: int = 4) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    for f in performance.annotators:
        kappa = sum(f.kappas.values()) / len(f.kappas) if f.kappas else None
        writer.writerow(
            [
                neutralise(f.username), f.labels, num(f.lead_p50, 2), num(f.lead_p90, 2), f.gold_answered,
                num(f.gold_accuracy), num(f.gold_low), num(f.gold_high), "true" if f.gold_alert else "false",
                f.reviewed, f.accepted, f.fixed, f.rejected, num(f.acceptance), f.skips, f.not_sure, f.flags,
                num(f.skip_rate), num(f.flag_rate), num(kappa),
            ]
        )  # fmt: skip
    return buffer.getvalue().encode("utf-8")


def as_json(performance: Performance) -> dict[str, Any]:
    def row(f: AnnotatorFigures) -> dict[str, Any]:
        data = asdict(f)
        data["gold_trend"] = [{"day": d, "accuracy": a, "answered": n} for d, a, n in f.gold_trend]
        data.update(
            gold_accuracy=f.gold_accuracy, acceptance=f.acceptance, skip_rate=f.skip_rate, flag_rate=f.flag_rate
        )
        return data

    return {
        "dataset_id": performance.dataset_id,
        "threshold": performance.threshold,
        "lead_bins": list(LEAD_BINS[:-1]),
        "annotators": [row(f) for f in performance.annotators],
    }

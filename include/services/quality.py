"""The dataset quality gate: checks with thresholds, a report with examples, and what it blocks.

Checks: duplicates after normalising case, spacing and punctuation; near-duplicates (cosine
similarity through the pgvector HNSW index, grouped); empty, too short and too long texts; the
mix of scripts; label balance; suspected label errors (confident learning on out-of-fold
probabilities of the platform's own head, Northcutt et al. 2021: flagged for review, never
changed); annotator agreement (Cohen's kappa per pair, Fleiss' kappa overall, where tasks have
two or more annotations). A failing report blocks import and training until the data is fixed
or an admin overrides it with a recorded reason.

Confident learning is implemented here from the paper rather than taken from cleanlab, whose
AGPL licence does not fit this project.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Annotation, Dataset, Item, QualityReport, Task, TaskStatus, User
from include.errors import Conflict, Invalid, NotFound
from include.params import ParamSpec, Values, param

MAX_DUPLICATE_SHARE = ParamSpec(
    "max_duplicate_share", "Duplicates (at most)", "float", 0.02, minimum=0, maximum=1, help="share of items"
)
NEAR_DUPLICATE_SIMILARITY = ParamSpec(
    "near_duplicate_similarity", "Near-duplicate similarity", "float", 0.95, minimum=0.5, maximum=1,
    help="cosine similarity at which two texts count as near-duplicates",
)  # fmt: skip
MAX_NEAR_DUPLICATE_SHARE = ParamSpec(
    "max_near_duplicate_share", "Near-duplicates (at most)", "float", 0.05, minimum=0, maximum=1, help="share of items"
)
MIN_CHARS = ParamSpec("min_chars", "Shortest text", "int", 3, minimum=0, maximum=10_000, help="characters")
MAX_CHARS = ParamSpec("max_chars", "Longest text", "int", 5000, minimum=1, maximum=20_000, help="characters")
MAX_BAD_LENGTH_SHARE = ParamSpec(
    "max_bad_length_share", "Empty, too short or too long (at most)", "float", 0.02, minimum=0, maximum=1
)
MIN_SCRIPT_SHARE = ParamSpec(
    "min_script_share", "Main script (at least)", "float", 0.9, minimum=0, maximum=1,
    help="share of texts written mainly in the dataset's main script",
)  # fmt: skip
MIN_LABEL_SHARE = ParamSpec(
    "min_label_share", "Rarest label (at least)", "float", 0.05, minimum=0, maximum=0.5, help="share of labeled tasks"
)
MAX_SUSPECT_SHARE = ParamSpec(
    "max_suspect_share", "Suspected label errors (at most)", "float", 0.1, minimum=0, maximum=1,
    help="share of labeled tasks",
)  # fmt: skip
MIN_KAPPA = ParamSpec("min_kappa", "Annotator agreement (at least)", "float", 0.4, minimum=-1, maximum=1, help="kappa")


@dataclass(frozen=True, kw_only=True)
class QualityThresholds(Values):
    """Where each quality check passes or fails (a dataset keeps only those it changed)."""

    max_duplicate_share: float = param(MAX_DUPLICATE_SHARE)
    near_duplicate_similarity: float = param(NEAR_DUPLICATE_SIMILARITY)
    max_near_duplicate_share: float = param(MAX_NEAR_DUPLICATE_SHARE)
    min_chars: int = param(MIN_CHARS)
    max_chars: int = param(MAX_CHARS)
    max_bad_length_share: float = param(MAX_BAD_LENGTH_SHARE)
    min_script_share: float = param(MIN_SCRIPT_SHARE)
    min_label_share: float = param(MIN_LABEL_SHARE)
    max_suspect_share: float = param(MAX_SUSPECT_SHARE)
    min_kappa: float = param(MIN_KAPPA)


THRESHOLDS = QualityThresholds.specs()
EXAMPLES = 8
MIN_LABELS_FOR_SUSPECTS = 30
MIN_SHARED_FOR_KAPPA = 5


class QualityGateFailed(Conflict, RuntimeError):
    """The dataset's latest quality report failed and nobody overrode it."""


def current_thresholds(dataset: Dataset) -> QualityThresholds:
    """The dataset's thresholds: its overrides over the declared defaults."""
    return QualityThresholds.parse(dict(dataset.quality_thresholds or {}))


def thresholds_of(dataset: Dataset) -> dict[str, Any]:
    return current_thresholds(dataset).as_params()


def apply_thresholds(session: Session, dataset: Dataset, thresholds: QualityThresholds) -> str:
    """Keep only the thresholds that differ from the defaults; returns the confirming sentence."""
    values = thresholds.as_params()
    dataset.quality_thresholds = {s.name: values[s.name] for s in THRESHOLDS if values[s.name] != s.default}
    session.flush()
    return "Thresholds saved: they apply from the next quality check."


def set_thresholds(session: Session, dataset: Dataset, raw: dict[str, Any]) -> dict[str, Any]:
    """Change some thresholds (by name; validated); returns them all."""
    thresholds = QualityThresholds.parse(raw, strict=True, current=current_thresholds(dataset))
    apply_thresholds(session, dataset, thresholds)
    return thresholds.as_params()


# -- the checks (plain functions over texts and labels) ---------------------------------------
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def script_of(text: str) -> str:
    """The script most of a text's letters are written in."""
    counts: Counter[str] = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
            counts["Han/Kana"] += 1
        elif name.startswith("HANGUL"):
            counts["Hangul"] += 1
        elif name.startswith("CYRILLIC"):
            counts["Cyrillic"] += 1
        elif name.startswith("ARABIC"):
            counts["Arabic"] += 1
        elif name.startswith("LATIN"):
            counts["Latin"] += 1
        else:
            counts["other"] += 1
    return counts.most_common(1)[0][0] if counts else "none"


def _check(passed: bool | None, value: Any, threshold: Any, detail: str, examples: list[Any] | None = None) -> dict:
    return {"passed": passed, "value": value, "threshold": threshold, "detail": detail, "examples": examples or []}


def duplicates(items: Sequence[tuple[int, str]], limit: float) -> dict[str, Any]:
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item_id, text in items:
        groups[normalise(text)].append((item_id, text))
    repeated = [g for g in groups.values() if len(g) > 1]
    extra = sum(len(g) - 1 for g in repeated)
    share = extra / len(items) if items else 0.0
    examples = [[{"item_id": i, "text": t[:160]} for i, t in g[:4]] for g in sorted(repeated, key=len, reverse=True)]
    return _check(
        share <= limit,
        round(share, 4),
        limit,
        f"{extra} items repeat another after normalising case, spacing and punctuation",
        examples[:EXAMPLES],
    )


def lengths(items: Sequence[tuple[int, str]], min_chars: int, max_chars: int, limit: float) -> dict[str, Any]:
    bad = [(i, t) for i, t in items if len(t.strip()) < max(min_chars, 1) or len(t) > max_chars]
    share = len(bad) / len(items) if items else 0.0
    sizes = np.asarray([len(t) for _, t in items] or [0])
    detail = (
        f"{len(bad)} texts are empty, shorter than {min_chars} or longer than {max_chars} characters; "
        f"median length {int(np.median(sizes))}"
    )
    check = _check(
        share <= limit, round(share, 4), limit, detail, [{"item_id": i, "text": t[:160]} for i, t in bad[:EXAMPLES]]
    )
    check["histogram"] = np.histogram(np.minimum(sizes, max_chars * 1.2), bins=20)[0].tolist()
    check["histogram_edges"] = np.histogram_bin_edges(np.minimum(sizes, max_chars * 1.2), bins=20).round(1).tolist()
    return check


def scripts(items: Sequence[tuple[int, str]], minimum: float) -> dict[str, Any]:
    by_script = Counter(script_of(t) for _, t in items)
    main, count = by_script.most_common(1)[0] if by_script else ("none", 0)
    share = count / len(items) if items else 1.0
    others = [(i, t) for i, t in items if script_of(t) != main]
    check = _check(
        share >= minimum,
        round(share, 4),
        minimum,
        f"main script {main}: " + ", ".join(f"{s} {n}" for s, n in by_script.most_common()),
        [{"item_id": i, "text": t[:160]} for i, t in others[:EXAMPLES]],
    )
    check["distribution"] = dict(by_script)
    return check


def balance(labels: Sequence[str], all_labels: Sequence[str], minimum: float) -> dict[str, Any]:
    if not labels:
        return _check(None, None, minimum, "no labels yet")
    counts = Counter(labels)
    shares = {label: counts.get(label, 0) / len(labels) for label in all_labels}
    rarest = min(shares, key=lambda k: shares[k])
    check = _check(
        shares[rarest] >= minimum,
        round(shares[rarest], 4),
        minimum,
        f"rarest label {rarest}: {counts.get(rarest, 0)} of {len(labels)}",
    )
    check["distribution"] = {label: counts.get(label, 0) for label in all_labels}
    return check


def confident_learning(probs: np.ndarray, y: np.ndarray) -> list[tuple[int, int, float]]:
    """Rows whose given label ``y`` is suspect: (row, likely label, margin), most suspect first.

    Per class j the threshold t_j is the mean predicted probability of j among rows labeled j; a
    row labeled i is suspect when some other class j reaches its own threshold (p_j >= t_j) and is
    more likely than i (the off-diagonal of the confident joint).
    """
    k = probs.shape[1]
    thresholds = np.asarray([probs[y == j, j].mean() if (y == j).any() else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :]
    above[np.arange(len(y)), y] = False
    suspects = []
    for row in np.flatnonzero(above.any(axis=1)):
        candidates = np.flatnonzero(above[row])
        j = int(candidates[np.argmax(probs[row, candidates])])
        margin = float(probs[row, j] - probs[row, y[row]])
        if margin > 0:
            suspects.append((int(row), j, margin))
    return sorted(suspects, key=lambda s: -s[2])


def out_of_fold(x: np.ndarray, y: np.ndarray, labels: list[str], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Probabilities of each example from the platform's logistic head trained without it."""
    from sklearn.model_selection import StratifiedKFold

    from include.ml.training.params import TrainParams
    from include.ml.training.train import train_head

    probs = np.zeros((len(y), len(labels)), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=min(folds, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    for train, held in splitter.split(x, y):
        head = train_head(x[train], y[train], labels, "quality", TrainParams(kind="logistic", c=1.0, seed=seed)).head
        probs[held] = head.predict_proba(x[held], device="cpu")
    return probs


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa for a (tasks, categories) table of rating counts with the same raters per task."""
    n = table.sum(axis=1)[0]
    p_j = table.sum(axis=0) / table.sum()
    p_i = (np.square(table).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), np.square(p_j).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def agreement(session: Session, dataset: Dataset) -> dict[str, Any]:
    """Cohen's kappa per annotator pair and Fleiss' kappa over tasks with two or more annotations."""
    from sklearn.metrics import cohen_kappa_score

    rows = session.execute(
        select(Annotation.task_id, Annotation.annotator_id, User.username, Annotation.label, Task.label)
        .join(Task, Task.id == Annotation.task_id)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(
            Task.dataset_id == dataset.id,
            Annotation.was_cancelled.is_(False),
            Annotation.ground_truth.is_(False),
            Annotation.label.is_not(None),
        )
    ).tuples()
    by_task: dict[int, dict[str, str]] = defaultdict(dict)
    final: dict[int, str | None] = {}
    for task_id, _, username, label, task_label in rows:
        by_task[task_id][username or "unknown"] = str(label)
        final[task_id] = task_label
    shared = {t: votes for t, votes in by_task.items() if len(votes) >= 2}
    people = sorted({p for votes in shared.values() for p in votes})
    pairs = []
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            common = [t for t, votes in shared.items() if a in votes and b in votes]
            if len(common) >= MIN_SHARED_FOR_KAPPA:
                ya, yb = [shared[t][a] for t in common], [shared[t][b] for t in common]
                kappa = float(cohen_kappa_score(ya, yb)) if len(set(ya) | set(yb)) > 1 else 1.0
                agree = sum(x == y for x, y in zip(ya, yb, strict=True)) / len(common)
                pairs.append(
                    {"a": a, "b": b, "tasks": len(common), "kappa": round(kappa, 4), "agreement": round(agree, 4)}
                )
    versus_final = []
    for person in people:
        mine = [(votes[person], final[t]) for t, votes in shared.items() if person in votes and final.get(t)]
        if mine:
            versus_final.append(
                {
                    "annotator": person,
                    "tasks": len(mine),
                    "agreement": round(sum(a == b for a, b in mine) / len(mine), 4),
                }
            )
    fleiss = None
    two = [votes for votes in shared.values() if len(votes) == 2]
    if len(two) >= MIN_SHARED_FOR_KAPPA:
        labels = list(dataset.labels)
        table = np.zeros((len(two), len(labels)))
        for r, votes in enumerate(two):
            for label in votes.values():
                if label in labels:
                    table[r, labels.index(label)] += 1
        table = table[table.sum(axis=1) == 2]
        fleiss = round(fleiss_kappa(table), 4) if len(table) else None
    return {"overlap_tasks": len(shared), "pairs": pairs, "versus_final": versus_final, "fleiss_kappa": fleiss}


# -- the report ---------------------------------------------------------------------------------
def build_report(
    session: Session,
    dataset: Dataset,
    *,
    vectors: dict[str, np.ndarray] | None,
    near: list[tuple[str, str, float]] | None,
) -> dict[str, Any]:
    """Every check over the dataset (``vectors`` of its texts and ``near`` pairs from the index,
    when it has been embedded)."""
    limits = thresholds_of(dataset)
    rows = (
        session.execute(
            select(Item.id, Item.text, Item.text_hash, Task.id, Task.status, Task.label)
            .outerjoin(Task, Task.item_id == Item.id)
            .where(Item.dataset_id == dataset.id, Item.pii_status != "pending")  # sealed: no text to judge yet
            .order_by(Item.id)
        )
        .tuples()
        .all()
    )
    items = [(int(i), str(t)) for i, t, *_ in rows]
    checks: dict[str, Any] = {
        "duplicates": duplicates(items, limits["max_duplicate_share"]),
        "lengths": lengths(items, limits["min_chars"], limits["max_chars"], limits["max_bad_length_share"]),
        "scripts": scripts(items, limits["min_script_share"]),
    }
    by_hash = {h: (i, t) for i, t, h, *_ in rows}
    if near is None:
        checks["near_duplicates"] = _check(
            None, None, limits["max_near_duplicate_share"], "not checked: embed the dataset first"
        )
    else:
        checks["near_duplicates"] = _near_duplicates(near, by_hash, len(items), limits)
    labeled = [
        (h, str(label), task_id)
        for _, _, h, task_id, status, label in rows
        if status == TaskStatus.LABELED and label in dataset.labels
    ]
    checks["label_balance"] = balance(
        [label for _, label, _ in labeled], list(dataset.labels), limits["min_label_share"]
    )
    checks["label_errors"] = _label_errors(labeled, vectors, list(dataset.labels), by_hash, limits["max_suspect_share"])
    agreeing = agreement(session, dataset)
    kappas = [p["kappa"] for p in agreeing["pairs"]]
    if not kappas:
        checks["agreement"] = _check(None, None, limits["min_kappa"], "no tasks with two or more annotations yet")
    else:
        worst = min(agreeing["pairs"], key=lambda p: p["kappa"])
        checks["agreement"] = _check(
            worst["kappa"] >= limits["min_kappa"],
            worst["kappa"],
            limits["min_kappa"],
            f"lowest Cohen's kappa {worst['kappa']:.2f} ({worst['a']} and {worst['b']}, {worst['tasks']} shared tasks)"
            + (f"; Fleiss' kappa {agreeing['fleiss_kappa']:.2f}" if agreeing["fleiss_kappa"] is not None else ""),
        )
    checks["agreement"]["pairs"] = agreeing["pairs"]
    checks["agreement"]["versus_final"] = agreeing["versus_final"]
    return {"items": len(items), "labeled": len(labeled), "checks": checks, "thresholds": limits}


def _near_duplicates(
    near: list[tuple[str, str, float]], by_hash: dict[str, tuple[int, str]], n: int, limits: dict[str, Any]
) -> dict[str, Any]:
    parent: dict[str, str] = {}

    def find(h: str) -> str:
        while parent.setdefault(h, h) != h:
            parent[h] = parent[parent[h]]
            h = parent[h]
        return h

    for a, b, _ in near:
        if a in by_hash and b in by_hash:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for h in list(parent):
        groups[find(h)].append(h)
    grouped = [g for g in groups.values() if len(g) > 1]
    extra = sum(len(g) - 1 for g in grouped)
    share = extra / n if n else 0.0
    examples = [
        [{"item_id": by_hash[h][0], "text": by_hash[h][1][:160]} for h in g[:4]]
        for g in sorted(grouped, key=len, reverse=True)
    ]
    return _check(
        share <= limits["max_near_duplicate_share"],
        round(share, 4),
        limits["max_near_duplicate_share"],
        f"{len(grouped)} groups of texts at least {limits['near_duplicate_similarity']:.2f} alike "
        f"({extra} items beyond one per group)",
        examples[:EXAMPLES],
    )


def _label_errors(
    labeled: list[tuple[str, str, int]],
    vectors: dict[str, np.ndarray] | None,
    labels: list[str],
    by_hash: dict[str, tuple[int, str]],
    limit: float,
) -> dict[str, Any]:
    usable = [(h, label, t) for h, label, t in labeled if vectors is not None and h in vectors]
    counts = Counter(label for _, label, _ in usable)
    if vectors is None:
        return _check(None, None, limit, "not checked: embed the dataset first")
    if len(usable) < MIN_LABELS_FOR_SUSPECTS or len(counts) < 2 or min(counts.values()) < 2:
        return _check(None, None, limit, f"not checked: needs {MIN_LABELS_FOR_SUSPECTS} labels of two or more labels")
    x = np.stack([vectors[h] for h, _, _ in usable])
    y = np.asarray([labels.index(label) for _, label, _ in usable])
    probs = out_of_fold(x, y, labels)
    suspects = confident_learning(probs, y)
    share = len(suspects) / len(usable)
    examples = [
        {
            "item_id": by_hash[usable[row][0]][0],
            "task_id": usable[row][2],
            "text": by_hash[usable[row][0]][1][:160],
            "label": usable[row][1],
            "likely": labels[j],
            "confidence": round(float(probs[row, j]), 3),
        }
        for row, j, _ in suspects[: EXAMPLES * 2]
    ]
    return _check(
        share <= limit,
        round(share, 4),
        limit,
        f"{len(suspects)} of {len(usable)} labels look wrong to a head trained without them "
        "(flagged for review, not changed)",
        examples,
    )


def store_report(session: Session, dataset: Dataset, report: dict[str, Any]) -> QualityReport:
    passed = all(check["passed"] is not False for check in report["checks"].values())
    row = QualityReport(dataset_id=dataset.id, passed=passed, checks=report, thresholds=report["thresholds"])
    session.add(row)
    session.flush()
    return row


def latest(session: Session, dataset_id: int) -> QualityReport | None:
    return session.scalar(
        select(QualityReport)
        .where(QualityReport.dataset_id == dataset_id)
        .order_by(QualityReport.created_at.desc(), QualityReport.id.desc())
        .limit(1)
    )


def failed_checks(report: QualityReport) -> list[str]:
    return [name for name, check in report.checks["checks"].items() if check["passed"] is False]


def require_passed(session: Session, dataset: Dataset, action: str) -> None:
    """Refuse ``action`` while the latest quality report failed and nobody overrode it.

    Raises:
        QualityGateFailed: naming the failed checks and what to do.
    """
    report = latest(session, dataset.id)
    if report is None or report.passed or report.overridden_at is not None:
        return
    raise QualityGateFailed(
        f"the quality gate of {dataset.name!r} failed on {report.created_at:%Y-%m-%d %H:%M} "
        f"({', '.join(failed_checks(report))}), so {action} is blocked: fix the data and run the quality check "
        "again, or override the gate on the dataset page with a reason"
    )


OVERRIDE_REASON = ParamSpec("reason", "Why the gate may be overridden", "text", max_length=2000,
                            help="at least 10 characters; kept on record")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Override(Values):
    """An admin's decision to let import and training go ahead despite a failed report."""

    reason: str = param(OVERRIDE_REASON)


class NoReport(NotFound):
    """The dataset has no quality report yet."""


def latest_or_missing(session: Session, dataset_id: int) -> QualityReport:
    report = latest(session, dataset_id)
    if report is None:
        raise NoReport(f"dataset {dataset_id} has no quality report: run quality_check first")
    return report


def override(session: Session, report: QualityReport, user: User, reason: str) -> None:
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise Invalid("say why the gate is overridden (at least 10 characters)")
    if report.passed:
        raise Conflict("this report passed: there is nothing to override")
    report.override_by, report.override_reason, report.overridden_at = user.id, reason[:2000], datetime.now(UTC)
    session.flush()

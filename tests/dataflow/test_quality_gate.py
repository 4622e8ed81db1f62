"""The dataset quality gate on real PostgreSQL + pgvector with the offline MiniLM encoder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from include.db.models import Dataset, Item, QualityReport, Role, Task, TaskStatus
from include.db.session import session_scope
from include.demo.texts import generate_demo_texts
from include.ml.training.params import TrainParams
from include.pipelines.catalog import DatasetValues, TrainValues
from include.pipelines.ls_import import import_dataset
from include.pipelines.quality_check import run_quality_check
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.services import quality
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC
from include.services.users import create_user

_ls_ids = itertools.count(70_000_000)
FLIPPED = 12


def make_dataset(db: str, texts: list[tuple[str, str | None]]) -> int:
    """Items with shadow tasks labeled as given (made-up Label Studio ids; the gate needs none)."""
    with session_scope(db) as s:
        ds = create_dataset(s, "quality", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(t, {"n": k}) for k, (t, _) in enumerate(texts)])
        ids = s.scalars(select(Item.id).where(Item.dataset_id == ds.id).order_by(Item.id)).all()
        by_text = dict(texts)
        for item_id in ids:
            text = s.get(Item, item_id).text
            label = by_text.get(text)
            s.add(
                Task(
                    dataset_id=ds.id,
                    item_id=item_id,
                    ls_project_id=1,
                    ls_task_id=next(_ls_ids),
                    status=TaskStatus.LABELED if label else TaskStatus.IMPORTED,
                    label=label,
                )
            )
        return ds.id


@pytest.fixture
def noisy(db) -> tuple[int, set[str]]:
    """200 demo notes labeled correctly but for 12 flipped labels, plus planted problems."""
    demo = generate_demo_texts(200, seed=3, noise=0.0, ambiguous=0.0)
    flipped = {d.text for d in demo[:FLIPPED]}
    texts: list[tuple[str, str | None]] = [
        (d.text, ("NG" if d.label == "OK" else "OK") if d.text in flipped else d.label) for d in demo
    ]
    texts += [(demo[k].text.upper() + "!!", None) for k in range(50, 54)]  # duplicates after normalising
    texts += [(demo[k].text.replace(" ", "  "), None) for k in range(54, 56)]
    texts += [
        ("ok", None),  # too short
        ("Экран треснул после падения, возврат", None),  # another script
    ]
    return make_dataset(db, texts), flipped


def test_the_report_finds_what_is_wrong(db, minilm, noisy) -> None:
    dataset_id, flipped = noisy
    result = run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=minilm)
    with session_scope(db) as s:
        report = s.get(QualityReport, result["report_id"])
        checks = report.checks["checks"]
    assert result["passed"] is False and "duplicates" in result["failed"]
    assert checks["duplicates"]["value"] == round(6 / 208, 4)
    assert len(checks["duplicates"]["examples"]) == 6 and all(len(g) == 2 for g in checks["duplicates"]["examples"])
    assert [e["text"] for e in checks["lengths"]["examples"]] == ["ok"]
    assert checks["scripts"]["distribution"] == {"Latin": 207, "Cyrillic": 1}
    assert checks["label_balance"]["passed"] is True
    # near-duplicates come from the HNSW index: the two planted duplicates are among them
    near_ids = {e["item_id"] for group in checks["near_duplicates"]["examples"] for e in group}
    with session_scope(db) as s:
        planted = set(s.scalars(select(Item.id).where(Item.dataset_id == dataset_id, Item.text.like("%!!"))))
    assert len(planted) == 4 and planted <= near_ids
    # confident learning: most flipped labels are flagged, and few correct ones are
    suspects = {e["text"] for e in checks["label_errors"]["examples"]}
    found = len(suspects & {t[:160] for t in flipped})
    assert found >= FLIPPED * 0.6, (found, checks["label_errors"]["detail"])
    assert len(suspects - {t[:160] for t in flipped}) <= found
    assert checks["agreement"]["passed"] is None  # no task has two annotations


def test_a_failing_gate_blocks_import_and_training_until_overridden(db, minilm, noisy, tmp_path) -> None:
    dataset_id, _ = noisy
    run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=minilm)
    with pytest.raises(quality.QualityGateFailed, match=r"failed on .* \(duplicates.*so importing into Label Studio"):
        import_dataset(db, object(), dataset_id)  # type: ignore[arg-type]  # refused before Label Studio is called
    with pytest.raises(quality.QualityGateFailed, match="so training is blocked"):
        run_train_classifier(
            db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")), embedder=minilm
        )
    with session_scope(db) as s:
        admin = create_user(s, "boss", "boss@labelops.test", "correct-horse-battery", Role.ADMIN)
        report = quality.latest(s, dataset_id)
        with pytest.raises(ValueError, match="at least 10 characters"):
            quality.override(s, report, admin, "ok")
        quality.override(s, report, admin, "the duplicates are deliberate paraphrases")
    with session_scope(db) as s:
        report = quality.latest(s, dataset_id)
        assert report.override_by is not None and report.override_reason.startswith("the duplicates")
        quality.require_passed(s, s.get(Dataset, dataset_id), "training")  # no longer raises


def test_thresholds_are_per_dataset_and_validated(db, minilm, noisy) -> None:
    dataset_id, _ = noisy
    with session_scope(db) as s:
        dataset = s.get(Dataset, dataset_id)
        quality.set_thresholds(
            s,
            dataset,
            {"max_duplicate_share": 0.05, "max_bad_length_share": 0.05, "min_script_share": 0.5,
             "max_near_duplicate_share": 1.0, "max_suspect_share": 0.5},
        )  # fmt: skip
        assert dataset.quality_thresholds["max_duplicate_share"] == 0.05
        with pytest.raises(Exception, match="max_duplicate_share must be between"):
            quality.set_thresholds(s, dataset, {"max_duplicate_share": 2})
    result = run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=minilm)
    assert result["passed"] is True, result


def test_kappa_matches_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 3, 200))
    table = np.zeros((200, 3))
    for r, (x, y) in enumerate(zip(a, b, strict=True)):
        table[r, x] += 1
        table[r, y] += 1
    # Fleiss' kappa with two raters is Scott's pi: close to Cohen's kappa with balanced marginals
    assert abs(quality.fleiss_kappa(table) - cohen_kappa_score(a, b)) < 0.02
    # the textbook example (Fleiss 1971, as on Wikipedia): 0.210
    wiki = np.array(
        [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
         [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    )  # fmt: skip
    assert round(quality.fleiss_kappa(wiki), 3) == 0.210


def test_confident_learning_on_a_known_case() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.88, 0.12]])
    y = np.array([0, 0, 1, 1, 1])  # the last is labeled 1 but looks like 0
    assert [(row, likely) for row, likely, _ in quality.confident_learning(probs, y)] == [(4, 0)]
    assert quality.confident_learning(probs, np.array([0, 0, 1, 1, 0])) == []


def test_a_policy_attached_later_removes_the_texts_reports_quote(db, minilm, noisy) -> None:
    """Examples written before the policy would keep what it replaces: they go, the figures stay."""
    from include.db.models import Dataset
    from include.services import pii

    dataset_id, _ = noisy
    result = run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=minilm)
    with session_scope(db) as s:
        assert s.get_one(QualityReport, result["report_id"]).checks["checks"]["lengths"]["examples"]
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        pii.attach(s, s.get_one(Dataset, dataset_id), policy.id, Fernet.generate_key())
    with session_scope(db) as s:
        checks = s.get_one(QualityReport, result["report_id"]).checks["checks"]
    assert all(check.get("examples") == [] for check in checks.values() if isinstance(check, dict))
    assert checks["duplicates"]["value"] == round(6 / 208, 4)  # the figures stay

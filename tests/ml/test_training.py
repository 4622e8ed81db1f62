"""Real torch training on small data: it learns, it is reproducible, it stops early, it saves."""

from __future__ import annotations

import numpy as np
import pytest

from include.ml.training.metrics import classification_metrics, expected_calibration_error
from include.ml.training.model import TrainedHead
from include.ml.training.train import TrainingDataError, TrainParams, class_weights, stratified_split, train_head


def blobs(n: int = 400, d: int = 32, seed: int = 0, imbalance: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < imbalance).astype(np.int64)
    centers = rng.normal(size=(2, d)) * 1.5
    x = centers[y] + rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_head_learns_separable_data(kind: str) -> None:
    x, y = blobs()
    result = train_head(x, y, ["OK", "NG"], "test-emb", TrainParams(kind=kind, epochs=60, lr=5e-3))
    assert result.metrics["f1"] > 0.9
    assert result.metrics["roc_auc"] > 0.95
    assert 0.0 <= result.metrics["ece"] <= 0.2
    assert result.history[0].val_loss > result.history[result.best_epoch - 1].val_loss
    assert result.device == "cpu"


def test_training_is_reproducible_with_a_seed() -> None:
    x, y = blobs(seed=3)
    params = TrainParams(kind="mlp", epochs=15, seed=7)
    a = train_head(x, y, ["OK", "NG"], "e", params)
    b = train_head(x, y, ["OK", "NG"], "e", params)
    assert a.val_idx.tolist() == b.val_idx.tolist()
    assert a.metrics == b.metrics


def test_early_stopping_stops_before_the_epoch_budget() -> None:
    x, y = blobs(n=200, seed=4)
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams(kind="mlp", epochs=1000, patience=3, lr=1e-2))
    assert len(result.history) < 1000
    assert result.best_epoch <= len(result.history) - 3


def test_split_is_stratified_and_weights_balance_classes() -> None:
    y = np.array([0] * 90 + [1] * 10)
    train_idx, val_idx = stratified_split(y, 0.2, seed=0)
    assert set(train_idx).isdisjoint(val_idx) and len(train_idx) + len(val_idx) == 100
    assert np.bincount(y[val_idx]).tolist() == [18, 2]
    w = class_weights(y, 2)
    assert w[1] / w[0] == pytest.approx(9.0)


def test_imbalanced_data_still_finds_the_minority_class() -> None:
    x, y = blobs(n=600, imbalance=0.1, seed=5)
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams(kind="logistic", epochs=80, lr=1e-2))
    assert result.metrics["f1"] > 0.85  # macro F1: the rare class counts as much


def test_not_enough_data_is_explained() -> None:
    x = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    with pytest.raises(TrainingDataError, match="at least two classes"):
        train_head(x, np.zeros(10, dtype=np.int64), ["OK", "NG"], "e", TrainParams())
    with pytest.raises(TrainingDataError, match="at least 2 labeled examples"):
        train_head(x, np.array([0] * 9 + [1]), ["OK", "NG"], "e", TrainParams())
    with pytest.raises(ValueError, match=r"(?i)model kind"):
        TrainParams(kind="transformer")


def test_metrics_on_known_values() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    m = classification_metrics(probs, y)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["roc_auc"] == pytest.approx(1.0)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, np.array([0, 1])) == pytest.approx(0.0)
    overconfident = np.array([[0.99, 0.01]] * 10)
    assert expected_calibration_error(overconfident, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.49)


def test_validation_split_holds_every_class_even_when_rounding_would_drop_one() -> None:
    y = np.array([0] * 18 + [1] * 2)  # 20 % of 20 rounds the rare class's share of 4 to zero
    for seed in range(20):
        train_idx, val_idx = stratified_split(y, 0.2, seed=seed)
        assert set(y[val_idx]) == {0, 1} and set(y[train_idx]) == {0, 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "imbalance"), [(20, 0.5), (40, 0.2), (200, 0.15)])
def test_default_head_is_never_worse_than_sklearn_logistic_regression_cv(n: int, imbalance: float, seed: int) -> None:
    """The same labels and embeddings, scikit-learn's plain recipe, a fixed test set."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    x, y = blobs(n=n + 2000, d=64, seed=seed, imbalance=imbalance)
    x = x + np.random.default_rng(seed).normal(size=x.shape).astype(np.float32) * 0.15  # overlapping classes
    x_tr, y_tr, x_te, y_te = x[:n], y[:n], x[n:], y[n:]
    if np.bincount(y_tr, minlength=2).min() < 2:
        pytest.skip("this draw has fewer than two of a class")
    ours = train_head(x_tr, y_tr, ["OK", "NG"], "e", TrainParams(seed=seed)).head
    cv = StratifiedKFold(n_splits=int(min(5, np.bincount(y_tr).min())), shuffle=True, random_state=seed)
    theirs = LogisticRegressionCV(Cs=10, cv=cv, max_iter=2000, use_legacy_attributes=False).fit(x_tr, y_tr)
    f1_ours = f1_score(y_te, ours.predict_proba(x_te).argmax(axis=1), average="macro")
    f1_theirs = f1_score(y_te, theirs.predict(x_te), average="macro")
    assert f1_ours >= f1_theirs - 0.01


def test_the_logistic_run_records_its_regularisation_path() -> None:
    x, y = blobs(n=120, seed=9)
    seen = []
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams(), on_epoch=seen.append)
    assert TrainParams().kind == "logistic"
    assert len(result.history) == len(seen) == 22  # 11 strengths, unweighted and balanced
    chosen = result.history[result.best_epoch - 1]
    assert chosen.metrics["f1"] == max(r.metrics["f1"] for r in result.history)
    assert result.metrics["C"] == chosen.metrics["C"] and result.metrics["cv_folds"] == 5
    fixed = train_head(x, y, ["OK", "NG"], "e", TrainParams(c=0.5))
    assert [r.metrics["C"] for r in fixed.history] == [0.5]
    # Every label trains the final head: its out-of-fold figures are the validation metrics.
    assert len(result.train_idx) == 120 and len(result.val_idx) == 0


def test_an_mlp_never_stops_before_its_minimum_epochs() -> None:
    from include.ml.training.train import MIN_EPOCHS

    x, y = blobs(n=60, seed=2)
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams(kind="mlp", epochs=200, patience=1, lr=0.05))
    assert len(result.history) >= MIN_EPOCHS


def test_large_label_sets_choose_c_on_a_sample_and_fit_on_everything(monkeypatch) -> None:
    from include.ml.training import logistic

    monkeypatch.setattr(logistic, "CV_SAMPLE", 300)
    x, y = blobs(n=1200, imbalance=0.02, seed=6)  # about 24 of the rare label: all of them are kept
    fit = logistic.fit_logistic(x, y, 2, seed=0)
    assert 300 <= len(fit.oof_index) < 400 and len(fit.oof_logits) == len(fit.oof_index)
    assert (y[fit.oof_index] == 1).sum() == (y == 1).sum()
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams())
    assert len(result.train_idx) == 1200 and result.metrics["f1"] > 0.8


def test_a_head_travels_as_bytes() -> None:
    """What the registry stores: any worker rebuilds the same head from the row, no file needed."""
    x, y = blobs(n=120)
    for kind in ("logistic", "mlp"):
        head = train_head(x, y, ["OK", "NG"], "all-MiniLM-L6-v2", TrainParams(kind=kind, epochs=12)).head
        again = TrainedHead.from_bytes(head.to_bytes())
        assert (again.labels, again.embedding_model, again.temperature) == (
            head.labels,
            head.embedding_model,
            head.temperature,
        )
        np.testing.assert_allclose(again.predict_proba(x), head.predict_proba(x), rtol=1e-6)


def test_heads_saved_as_files_by_earlier_versions_still_load(tmp_path) -> None:
    import json
    from dataclasses import asdict

    import torch

    x, y = blobs(n=120)
    head = train_head(x, y, ["OK", "NG"], "e", TrainParams(kind="mlp", epochs=5)).head
    torch.save(head.module.state_dict(), tmp_path / "old.pt")
    meta = {"config": asdict(head.config), "labels": head.labels, "embedding_model": "e", "temperature": 1.5}
    (tmp_path / "old.json").write_text(json.dumps(meta))
    loaded = TrainedHead.load(tmp_path / "old.pt")
    assert loaded.temperature == 1.5 and loaded.labels == ["OK", "NG"]
    np.testing.assert_allclose(loaded.logits(x), head.logits(x), rtol=1e-5)

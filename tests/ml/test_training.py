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


def test_artifact_round_trip(tmp_path) -> None:
    x, y = blobs(n=120)
    result = train_head(x, y, ["OK", "NG"], "all-MiniLM-L6-v2", TrainParams(kind="mlp", epochs=5))
    weights = result.head.save(tmp_path / "model-v1")
    loaded = TrainedHead.load(weights)
    assert loaded.labels == ["OK", "NG"] and loaded.embedding_model == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(loaded.predict_proba(x), result.head.predict_proba(x), rtol=1e-5)


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

"""Temperature scaling makes an over-confident head honest, and changes no prediction."""

from __future__ import annotations

import numpy as np

from include.ml.calibration import fit_temperature
from include.ml.training.metrics import expected_calibration_error
from include.ml.training.model import softmax


def test_temperature_lowers_ece_of_an_overconfident_head() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    signal = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.2, 2000)  # about 80 % separable
    logits = np.stack([-signal, signal], axis=1) * 6.0  # far too sure of itself
    before = expected_calibration_error(softmax(logits), y)
    temperature = fit_temperature(logits, y)
    after = expected_calibration_error(softmax(logits / temperature), y)
    assert temperature > 2.0
    assert before > 0.1 and after < before / 3
    assert (softmax(logits / temperature).argmax(1) == softmax(logits).argmax(1)).all()


def test_nothing_to_fit_keeps_one() -> None:
    assert fit_temperature(np.zeros((3, 2)), np.array([1, 1, 1])) == 1.0


def test_trained_heads_are_calibrated_and_remember_it() -> None:
    from include.ml.training.model import TrainedHead
    from include.ml.training.params import TrainParams
    from include.ml.training.train import train_head

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    x = rng.normal(0, 1, (300, 16)).astype(np.float32) + y[:, None] * 0.6
    result = train_head(x, y, ["OK", "NG"], "e", TrainParams(kind="mlp", epochs=200, patience=50, lr=0.05))
    metrics = result.metrics
    assert metrics["temperature"] == result.head.temperature and metrics["temperature"] != 1.0
    assert metrics["ece"] <= metrics["ece_before_calibration"] + 1e-9
    loaded = TrainedHead.from_bytes(result.head.to_bytes())  # as stored in the registry row
    assert loaded.temperature == result.head.temperature
    np.testing.assert_allclose(loaded.predict_proba(x[:5]), result.head.predict_proba(x[:5]), rtol=1e-5)

"""The default head: L2 logistic regression fitted by L-BFGS, regularisation chosen by cross-validation.

Why not the iterative torch loop the MLP uses: on frozen sentence embeddings a linear model is
convex, so the exact optimum (scikit-learn's L-BFGS) beats any early-stopped SGD run, and at 20
labels a 20 % validation split is 4 examples; stratified k-fold cross-validation uses every label
both to fit and to judge. The strength ``C`` and class weighting (none or balanced) are chosen by
out-of-fold macro F1 (ties: lower log-loss), the same figure the gate promotes on. The
out-of-fold logits of the chosen setting calibrate the temperature, so calibration never sees a
prediction on a training example. The fitted weights are copied into the same ``nn.Linear`` head
the rest of the platform loads, scores and serves.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

# Half-decade steps: scikit-learn's LogisticRegressionCV uses 10 values over 1e-4..1e4; below 1e-2
# unit-length embeddings collapse to the prior, above 1e3 the fit is unregularised.
C_GRID = tuple(float(c) for c in np.logspace(-2, 3, 11))
CLASS_WEIGHTS = (None, "balanced")
MAX_FOLDS = 5
# Above this many labels the strength is chosen on a stratified sample (the path costs 110 fits;
# C moves little between 20k and 1M examples) and only the final fit sees every label.
CV_SAMPLE = 20_000
MAX_ITER = 2_000


class TooFewExamples(ValueError):
    """A class has fewer than two examples, so no fold can judge it."""


@dataclass
class PathPoint:
    """One candidate setting on the regularisation path, judged out of fold."""

    c: float
    class_weight: str | None
    train_loss: float
    cv_loss: float
    cv_f1: float
    seconds: float


@dataclass
class LogisticFit:
    weight: np.ndarray  # (k, d) logits = x @ weight.T + bias
    bias: np.ndarray  # (k,)
    c: float
    class_weight: str | None
    folds: int
    oof_logits: np.ndarray  # (m, k) out-of-fold logits of the chosen setting for rows oof_index
    oof_index: np.ndarray  # which rows were cross-validated: all, or a stratified sample above CV_SAMPLE
    path: list[PathPoint] = field(default_factory=list)
    best: int = 0  # index into path


def _logits(model: object, x: np.ndarray) -> np.ndarray:
    """(n, k) logits from a fitted LogisticRegression, binary included (symmetric, same softmax)."""
    scores = model.decision_function(x)  # type: ignore[attr-defined]
    if scores.ndim == 1:
        return np.stack([-scores / 2, scores / 2], axis=1)
    return np.asarray(scores)


def _log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def _model(c: float, class_weight: str | None, seed: int) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=class_weight, max_iter=MAX_ITER, random_state=seed, warm_start=True)


@contextmanager
def _quiet() -> Iterator[None]:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _binary_fix(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if coef.shape[0] == 1:  # binary: one score z; softmax([-z/2, z/2]) == sigmoid(z)
        return np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return coef, intercept


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    seed: int = 0,
    c: float | None = None,
    sample_weight: np.ndarray | None = None,
) -> LogisticFit:
    """Fit on all of ``x``/``y``; with ``c`` None choose it (and class weighting) by stratified k-fold CV.

    ``sample_weight``: how much each example counts (a label's reliability,
    include.ml.reliability), in the folds and the final fit alike.

    Raises:
        TooFewExamples: a class present in ``y`` has a single example.
    """
    from sklearn.model_selection import StratifiedKFold

    x_all = np.asarray(x, dtype=np.float64)
    y_all = np.asarray(y, dtype=np.int64)
    w_all = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(y_all, minlength=num_classes)
    present = counts[counts > 0]
    if present.min() < 2:
        raise TooFewExamples("every class needs at least 2 labeled examples")
    oof_index = np.arange(len(y_all))
    if len(y_all) > CV_SAMPLE:  # stratified, and a rare label keeps up to 50 of its examples
        rng = np.random.default_rng(seed)
        parts = []
        for label in np.flatnonzero(counts):
            members = np.flatnonzero(y_all == label)
            take = min(len(members), max(50, round(len(members) * CV_SAMPLE / len(y_all))))
            parts.append(rng.choice(members, take, replace=False))
        oof_index = np.sort(np.concatenate(parts))
    x, y = x_all[oof_index], y_all[oof_index]
    w = None if w_all is None else w_all[oof_index]
    folds = int(min(MAX_FOLDS, present.min()))
    dense_y = np.unique(y, return_inverse=True)[1].astype(np.int64)  # scikit-learn's column order
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    grid_c = (c,) if c is not None else C_GRID
    weightings = (None,) if c is not None else CLASS_WEIGHTS
    path: list[PathPoint] = []
    oof_by_setting: list[np.ndarray] = []
    for cw in weightings:
        # One warm-started model per fold walks C upwards: each fit starts from the last optimum.
        oof = np.zeros((len(grid_c), len(y), len(present)))
        train_losses = np.zeros((len(grid_c), folds))
        seconds = np.zeros(len(grid_c))
        for f, (train, held) in enumerate(splits):
            model = _model(grid_c[0], cw, seed)
            for i, cc in enumerate(grid_c):
                started = time.perf_counter()
                model.set_params(C=cc)  # type: ignore[attr-defined]
                with _quiet():  # a separable fold at large C stops at MAX_ITER: the path goes on
                    model.fit(x[train], y[train], sample_weight=None if w is None else w[train])  # type: ignore[attr-defined]
                oof[i, held] = _logits(model, x[held])
                train_losses[i, f] = _log_loss(_logits(model, x[train]), dense_y[train])
                seconds[i] += time.perf_counter() - started
        for i, cc in enumerate(grid_c):
            path.append(
                PathPoint(
                    c=cc,
                    class_weight=cw,
                    train_loss=float(train_losses[i].mean()),
                    cv_loss=_log_loss(oof[i], dense_y),
                    cv_f1=_macro_f1(oof[i].argmax(axis=1), dense_y, len(present)),
                    seconds=float(seconds[i]),
                )
            )
            oof_by_setting.append(oof[i])
    best = max(range(len(path)), key=lambda i: (round(path[i].cv_f1, 6), -path[i].cv_loss))
    chosen = path[best]
    final = _model(chosen.c, chosen.class_weight, seed)
    with _quiet():
        final.fit(x_all, y_all, sample_weight=w_all)  # type: ignore[attr-defined]
    weight, bias = _binary_fix(final.coef_, final.intercept_)  # type: ignore[attr-defined]
    full_w = np.zeros((num_classes, x.shape[1]))
    full_b = np.full(num_classes, -1e4)  # a label with no examples is never predicted
    full_oof = np.full((len(oof_index), num_classes), -1e4)
    classes = np.flatnonzero(counts > 0)
    full_w[classes], full_b[classes] = weight, bias
    full_oof[:, classes] = oof_by_setting[best]
    return LogisticFit(
        weight=full_w,
        bias=full_b,
        c=chosen.c,
        class_weight=chosen.class_weight,
        folds=folds,
        oof_logits=full_oof,
        oof_index=oof_index,
        path=path,
        best=best,
    )


def _macro_f1(predicted: np.ndarray, y: np.ndarray, k: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, predicted, average="macro", labels=list(range(k)), zero_division=0))

"""Label reliability: each annotator's confusion matrix and each item's true-label posterior,
estimated from overlapping labels and gold by Dawid and Skene's EM (Applied Statistics 28(1),
1979, "Maximum likelihood estimation of observer error-rates using the EM algorithm").

Written from the paper (40 lines of numpy) rather than taken from a library: the maintained
Python implementations (crowd-kit) pull in pandas-heavy stacks for one EM loop, and none lets
known (gold or reviewed) items stay clamped to their label, which is what seeds the estimate
here. Items with a known label keep it, and an annotator who answered enough of them starts
from that record rather than from the vote; every other item's posterior is
``prior[k] * prod_a confusion_a[k, label_a]``, normalised; confusions and priors are re-estimated
from the posteriors with add-``smoothing`` counts, until the log-likelihood stops improving.

The posterior's argmax is the training label and its probability the label's weight; a label
whose annotator's vote disagrees with a confident posterior is a likely mistake worth a review.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Reliability:
    """The estimate: per item a posterior over classes, per annotator a confusion matrix."""

    posterior: np.ndarray  # (items, classes)
    confusion: dict[Hashable, np.ndarray]  # annotator -> (classes, classes): P(says l | truth k)
    prior: np.ndarray  # (classes,)
    iterations: int

    def label(self) -> np.ndarray:
        return np.asarray(self.posterior.argmax(axis=1), dtype=np.int64)

    def weight(self) -> np.ndarray:
        return np.asarray(self.posterior.max(axis=1), dtype=np.float64)

    def accuracy(self, annotator: Hashable) -> float:
        """The annotator's estimated accuracy: the diagonal weighted by the class prior."""
        return float(np.sum(self.prior * np.diag(self.confusion[annotator])))


MIN_KNOWN = 5  # known items an annotator answered before their gold record seeds the estimate


def _confusions(
    people: int, k: int, who: np.ndarray, said: np.ndarray, truth: np.ndarray, smoothing: float
) -> np.ndarray:
    """Each annotator's P(says l | truth k) from soft truths, with add-``smoothing`` counts."""
    counts = np.full((people, k, k), smoothing)
    np.add.at(counts, (who, slice(None), said), truth)  # type: ignore[arg-type]
    return counts / counts.sum(axis=2, keepdims=True)


def estimate(
    n_items: int,
    n_classes: int,
    labels: Sequence[tuple[int, Hashable, int]],
    known: Mapping[int, int] | None = None,
    *,
    smoothing: float = 1.0,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> Reliability:
    """Dawid-Skene over ``labels`` = (item, annotator, class) triples; ``known`` = item -> class
    (gold, or a reviewer's verdict) stays fixed and anchors each annotator's confusion."""
    known = dict(known or {})
    people = sorted({a for _, a, _ in labels}, key=str)
    index = {a: i for i, a in enumerate(people)}
    items = np.fromiter((i for i, _, _ in labels), dtype=np.int64, count=len(labels))
    who = np.fromiter((index[a] for _, a, _ in labels), dtype=np.int64, count=len(labels))
    said = np.fromiter((c for _, _, c in labels), dtype=np.int64, count=len(labels))
    # Start from the majority vote (known items at their label): a good first E-step.
    posterior = np.full((n_items, n_classes), 1.0 / n_classes)
    votes = np.zeros((n_items, n_classes))
    np.add.at(votes, (items, said), 1.0)
    voted = votes.sum(axis=1) > 0
    posterior[voted] = votes[voted] / votes[voted].sum(axis=1, keepdims=True)
    clamp_items = np.fromiter(known, dtype=np.int64, count=len(known))
    clamp_rows = np.zeros((len(known), n_classes))
    clamp_rows[np.arange(len(known)), np.fromiter(known.values(), dtype=np.int64, count=len(known))] = 1.0
    if len(known):
        posterior[clamp_items] = clamp_rows
    previous = -np.inf
    prior = np.full(n_classes, 1.0 / n_classes)
    confusion = _confusions(len(people), n_classes, who, said, posterior[items], smoothing)
    # Seeded by gold: an annotator who answered at least MIN_KNOWN known items starts from how
    # they did on those (the vote would take a consistently wrong annotator at their word).
    on_known = np.isin(items, clamp_items)
    if on_known.any():
        seeded = _confusions(
            len(people), n_classes, who[on_known], said[on_known], posterior[items[on_known]], smoothing
        )
        answered = np.bincount(who[on_known], minlength=len(people))
        confusion[answered >= MIN_KNOWN] = seeded[answered >= MIN_KNOWN]
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        # E-step: each item's posterior from its labels.
        log_post = np.tile(np.log(prior), (n_items, 1))
        np.add.at(log_post, items, np.log(confusion[who, :, said]))
        peak = log_post.max(axis=1, keepdims=True)
        unnormalised = np.exp(log_post - peak)
        total = unnormalised.sum(axis=1, keepdims=True)
        posterior = unnormalised / total
        if len(known):
            posterior[clamp_items] = clamp_rows
        # M-step: confusions and priors from the posteriors.
        confusion = _confusions(len(people), n_classes, who, said, posterior[items], smoothing)
        prior = (posterior.sum(axis=0) + smoothing) / (n_items + smoothing * n_classes)
        likelihood = float(np.sum(peak[:, 0] + np.log(total[:, 0])))
        if likelihood - previous < tolerance * max(1.0, abs(likelihood)):
            break
        previous = likelihood
    return Reliability(posterior, {a: confusion[index[a]] for a in people}, prior, iterations)

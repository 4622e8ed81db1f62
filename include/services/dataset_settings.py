"""A dataset's settings, each a group of declared parameters next to the service that applies it.

The dataset page's forms and the API's bodies parse through the same group and call the same
``apply``; a new setting is one :class:`Setting` here (its parameters, how to read the current
values off the dataset, the service function that applies them) and appears on the settings
page, in ``GET/PUT /api/v1/datasets/<id>/settings`` and in the OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from include.db.models import Dataset
from include.errors import NotFound
from include.params import Values, group
from include.services import assignment, eval_set, gold, label_policy, live_loop, quality, retune


@dataclass(frozen=True)
class Setting:
    """One settings group of a dataset: what it is called, its values, how it is read and applied."""

    name: str  # its path segment on the page and in the API
    title: str
    description: str
    values: type[Values]
    apply: Callable[[Session, Dataset, Any], str]  # returns the sentence that confirms the change
    current: Callable[[Dataset], Values]

    def read(self, dataset: Dataset) -> Values:
        return self.current(dataset)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "overlap",
            "Overlap",
            "A share of each auto-assignment also goes to a second annotator, so the two can be compared.",
            assignment.OverlapSettings,
            assignment.apply_overlap,
            assignment.OverlapSettings.from_object,
        ),
        Setting(
            "live-loop",
            "Live loop",
            "Once this many new labels arrive, the dataset is exported, retrained, gated, pre-labeled and re-scored "
            "on its own, so annotators' lists follow the current model. The nightly loop still runs.",
            live_loop.LiveLoopSettings,
            live_loop.apply_settings,
            live_loop.LiveLoopSettings.from_object,
        ),
        Setting(
            "retune",
            "Encoder fine-tuning",
            "On data where the frozen encoder plateaus, tuning it on the first labels lifts every later round; heads "
            "then train on the tuned encoder. Minutes on a GPU worker, 8 to 20 minutes on CPU.",
            retune.RetuneSettings,
            retune.apply_settings,
            retune.RetuneSettings.from_object,
        ),
        Setting(
            "eval-policy",
            "Evaluation set",
            "Labeled texts kept out of every training run and used to judge models; members stay members.",
            eval_set.EvalPolicy,
            eval_set.apply_policy,
            eval_set.EvalPolicy.from_object,
        ),
        Setting(
            "what-counts",
            "What counts",
            "Which labels train models and which judge them: every submitted label, labels two annotators agree on "
            "or a reviewer accepted, or reviewed labels only; and whether training weighs each label by how reliable "
            "its annotators are (overlap, gold and reviews). Applies from the next training run and gate.",
            label_policy.WhatCounts,
            label_policy.apply_settings,
            label_policy.WhatCounts.from_object,
        ),
        Setting(
            "gold",
            "Hidden gold",
            "A share of each annotator's queue is evaluation items with a checked label, shown like any task; their "
            "answers give each annotator's accuracy, and an alert opens when it is confidently below the threshold.",
            gold.GoldSettings,
            gold.apply_settings,
            gold.GoldSettings.from_object,
        ),
        Setting(
            "quality-thresholds",
            "Quality thresholds",
            "Where each check of the quality gate passes; they apply from the next quality check.",
            quality.QualityThresholds,
            quality.apply_thresholds,
            quality.current_thresholds,
        ),
    )
}


def setting(name: str) -> Setting:
    """The settings group ``name``.

    Raises:
        NotFound: no such group (the message lists them).
    """
    try:
        return SETTINGS[name]
    except KeyError:
        raise NotFound(f"no dataset setting {name!r}; one of: {', '.join(SETTINGS)}") from None


@dataclass(frozen=True, kw_only=True)
class DatasetSettings(Values):
    """Every setting of a dataset in one body (``PUT /api/v1/datasets/<id>/settings``)."""

    overlap: assignment.OverlapSettings = group(assignment.OverlapSettings)
    live_loop: live_loop.LiveLoopSettings = group(live_loop.LiveLoopSettings)
    retune: retune.RetuneSettings = group(retune.RetuneSettings)
    eval_policy: eval_set.EvalPolicy = group(eval_set.EvalPolicy)
    what_counts: label_policy.WhatCounts = group(label_policy.WhatCounts)
    hidden_gold: gold.GoldSettings = group(gold.GoldSettings)
    quality_thresholds: quality.QualityThresholds = group(quality.QualityThresholds)


_FIELDS = {"overlap": "overlap", "live-loop": "live_loop", "retune": "retune", "eval-policy": "eval_policy",
           "what-counts": "what_counts", "gold": "hidden_gold", "quality-thresholds": "quality_thresholds"}  # fmt: skip


def current(dataset: Dataset) -> DatasetSettings:
    """Every setting of the dataset as it is now."""
    groups: dict[str, Any] = {_FIELDS[name]: s.read(dataset) for name, s in SETTINGS.items()}
    return DatasetSettings(**groups)


def apply(session: Session, dataset: Dataset, values: DatasetSettings, changed: set[str] | None = None) -> list[str]:
    """Apply each group whose parameters are in ``changed`` (all when None); returns what changed."""
    said = []
    for name, s in SETTINGS.items():
        if changed is None or changed & set(s.values.names()):
            said.append(s.apply(session, dataset, getattr(values, _FIELDS[name])))
    return said

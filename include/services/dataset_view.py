"""What each tab of a dataset's page shows, gathered in one place.

The page is split into tabs (overview, labeling, quality and privacy, models, settings); each
tab's template gets one object from here instead of a score of loose variables, and the reads
a tab does not show are not made. Plain data only: the web layer adds what comes from its
config (Label Studio's public address, whether PII_KEY is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from include.db.models import (
    Dataset,
    GuidelineVersion,
    Job,
    PiiPolicy,
    QualityReport,
    Snapshot,
    TaskFlag,
    TrainingConfigFile,
)
from include.services import (
    dataset_settings,
    eval_set,
    flags,
    gold,
    guidelines,
    live_loop,
    performance,
    pii,
    privacy,
    quality,
    registry,
    retune,
    training_configs,
)
from include.services.dataset_settings import Setting
from include.services.jobs import recent_jobs
from include.services.ls_projects import served_model_version
from include.services.snapshots import list_snapshots
from include.services.stats import dataset_stats, per_annotator_stats
from include.services.users import annotators

TABS = (
    ("overview", "Overview"),
    ("labeling", "Labeling"),
    ("quality-privacy", "Quality and privacy"),
    ("models", "Models"),
    ("people", "People"),
    ("settings", "Settings"),
)
# The pipelines a dataset's overview offers as one-click buttons (all of them are on the pipelines page).
DATASET_BUTTONS = ("ls_import", "ls_export", "quality_check", "prelabel", "score_uncertainty")


@dataclass(frozen=True)
class Header:
    """What every tab shows at its top."""

    dataset: Dataset
    stats: dict[str, Any]
    served_version: str | None


@dataclass(frozen=True)
class Overview:
    header: Header
    jobs: list[Job]
    buttons: tuple[str, ...]


@dataclass(frozen=True)
class Labeling:
    header: Header
    annotators: list[dict[str, Any]]
    annotator_names: list[str]
    snapshots: list[Snapshot]
    guidelines_html: str  # the current guidelines, rendered and sanitised
    guideline_versions: list[GuidelineVersion]
    flags: list[tuple[TaskFlag, str | None]]  # open skips and flags, with who raised them


@dataclass(frozen=True)
class QualityPrivacy:
    header: Header
    report: QualityReport | None
    failed: list[str]
    agreement: dict[str, Any]
    policies: list[PiiPolicy]
    pii_pending: int
    privacy: dict[str, Any]  # the dataset's decision (include.services.privacy.describe)
    held: list[tuple[int, str]]  # items de-identification held for review, with why


@dataclass(frozen=True)
class Models:
    header: Header
    evaluation: eval_set.EvalSet
    configs: list[TrainingConfigFile]
    promoted: Any
    live: dict[str, Any]


@dataclass(frozen=True)
class SettingsTab:
    header: Header
    groups: list[tuple[Setting, dict[str, Any]]]  # each group with its current values by name
    live: dict[str, Any]
    auto_retune_at: int


def header(session: Session, dataset: Dataset) -> Header:
    return Header(dataset, dataset_stats(session, dataset), served_model_version(session, dataset.ls_project_id))


def overview(session: Session, dataset: Dataset) -> Overview:
    return Overview(header(session, dataset), recent_jobs(session, 8, dataset_id=dataset.id), DATASET_BUTTONS)


def labeling(session: Session, dataset: Dataset) -> Labeling:
    return Labeling(
        header(session, dataset),
        per_annotator_stats(session, dataset.id),
        [u.username for u in annotators(session)],
        list_snapshots(session, dataset.id)[:5],
        guidelines.render(dataset.guidelines),
        guidelines.versions(session, dataset.id)[:10],
        flags.open_flags(session, dataset.id, limit=50),
    )


def quality_privacy(session: Session, dataset: Dataset) -> QualityPrivacy:
    report = quality.latest(session, dataset.id)
    return QualityPrivacy(
        header(session, dataset),
        report,
        quality.failed_checks(report) if report else [],
        quality.agreement(session, dataset),
        pii.list_policies(session),
        pii.pending_count(session, dataset.id) if dataset.pii_policy_id else 0,
        privacy.describe(session, dataset),
        pii.held_items(session, dataset.id) if dataset.pii_policy_id else [],
    )


def models(session: Session, dataset: Dataset) -> Models:
    return Models(
        header(session, dataset),
        eval_set.current_set(session, dataset),
        training_configs.list_configs(session, dataset.id),
        registry.promoted_model(session, dataset.id),
        live_loop.status(session, dataset),
    )


def settings(session: Session, dataset: Dataset) -> SettingsTab:
    groups = [(s, s.read(dataset).as_params()) for s in dataset_settings.SETTINGS.values()]
    return SettingsTab(header(session, dataset), groups, live_loop.status(session, dataset), retune.AUTO_RETUNE_AT)


@dataclass(frozen=True)
class PeopleTab:
    header: Header
    performance: performance.Performance
    alerts: list[Any]
    gold_pool: int


def people(session: Session, dataset: Dataset) -> PeopleTab:
    """Annotator performance: throughput, time to label, gold accuracy, agreement, reviews, skips."""
    return PeopleTab(
        header(session, dataset),
        performance.report(session, dataset),
        gold.open_alerts(session, dataset.id),
        gold.pool_size(session, dataset),
    )


TAB_VIEWS = {
    "overview": overview,
    "labeling": labeling,
    "quality-privacy": quality_privacy,
    "models": models,
    "people": people,
    "settings": settings,
}

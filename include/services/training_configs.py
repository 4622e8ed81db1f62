"""A dataset's training configs: stored as uploaded (to show and download) and as parsed values.

Parsing and checking is :mod:`include.ml.training.configs`; this module keeps them per dataset.
Uploading a config under a name that exists replaces it (the experiments that used the old one
keep the values they ran with in their own parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset, Experiment, TrainingConfigFile, User
from include.errors import Invalid, NotFound
from include.ml.training.configs import MAX_BYTES, ConfigError, Problem, Sweep, TrainingConfig, parse_config
from include.params import ParamSpec, Values, param

NAME_MAX = 128


class TrainingConfigNotFound(NotFound):
    """No such config for this dataset; the message says which."""


class SweepConfig(Invalid, LookupError):
    """A sweep config where a single training run was asked for."""


CONFIG_NAME = ParamSpec("name", "Name", "str", max_length=NAME_MAX)
CONFIG_YAML = ParamSpec("yaml", "YAML", "text", max_length=MAX_BYTES, strip=False, help="training parameters, and "
                        "optionally a sweep section")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ConfigBody(Values):
    """A training config as the API takes it: a name and its YAML text."""

    name: str = param(CONFIG_NAME)
    yaml: str = param(CONFIG_YAML)


def save(session: Session, dataset: Dataset, name: str, body: str, user: User | None) -> TrainingConfigFile:
    """Check ``body`` and store it as the dataset's config ``name`` (replacing one of that name).

    Raises:
        ConfigError: the name or the YAML is not usable; each problem has its line and key.
    """
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise ConfigError([Problem(0, "name", f"give the config a name of 1 to {NAME_MAX} characters")])
    parsed = parse_config(body)
    row = session.scalar(
        select(TrainingConfigFile).where(TrainingConfigFile.dataset_id == dataset.id, TrainingConfigFile.name == name)
    )
    if row is None:
        row = TrainingConfigFile(dataset_id=dataset.id, name=name)
        session.add(row)
    row.body = body
    row.values = parsed.values
    row.sweep = parsed.sweep.as_json() if parsed.sweep else None
    row.created_by = user.id if user is not None else None
    session.flush()
    return row


def exists(session: Session, dataset_id: int, name: str) -> bool:
    return any(r.name == name.strip() for r in list_configs(session, dataset_id))


def list_configs(session: Session, dataset_id: int) -> list[TrainingConfigFile]:
    return list(
        session.scalars(
            select(TrainingConfigFile)
            .where(TrainingConfigFile.dataset_id == dataset_id)
            .order_by(TrainingConfigFile.name)
        )
    )


def get(session: Session, dataset_id: int, config_id: int) -> TrainingConfigFile:
    """The config, which must belong to the dataset.

    Raises:
        TrainingConfigNotFound: no config ``config_id`` for this dataset.
    """
    row = session.get(TrainingConfigFile, config_id)
    if row is None or row.dataset_id != dataset_id:
        raise TrainingConfigNotFound(f"dataset {dataset_id} has no training config {config_id}")
    return row


def as_config(row: TrainingConfigFile) -> TrainingConfig:
    return TrainingConfig(values=dict(row.values), sweep=Sweep.from_json(row.sweep) if row.sweep else None)


def train_values(session: Session, dataset_id: int, config_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The train step's values with the config's on top (a sweep config is refused: run a sweep).

    Raises:
        TrainingConfigNotFound: no such config for the dataset, or it is a sweep.
    """
    row = get(session, dataset_id, config_id)
    if row.sweep:
        raise SweepConfig(f"training config {row.name!r} is a sweep: run the sweep pipeline with it")
    return {**values, **row.values}


def latest_sweep_experiments(session: Session, dataset_id: int, name: str, limit: int = 5) -> list[int]:
    """Experiment ids of the latest sweep of config ``name``, best validation F1 first."""
    rows = session.execute(
        select(Experiment.id, Experiment.run_id, Experiment.metrics)
        .where(Experiment.dataset_id == dataset_id, Experiment.params["sweep"].astext == name)
        .order_by(Experiment.id.desc())
    ).all()
    if not rows:
        return []
    latest = rows[0].run_id
    trials = [r for r in rows if r.run_id == latest and r.metrics]
    # The order pick_best uses: validation F1, then the lower validation loss.
    trials.sort(key=lambda r: (-round(float(r.metrics.get("f1", 0.0)), 6), float(r.metrics.get("val_loss", 0.0))))
    return [int(r.id) for r in trials[:limit]]

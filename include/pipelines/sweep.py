"""sweep: train every trial of a config's sweep as its own experiment, gate the best by validation.

``plan_sweep`` expands the config into parameter sets (include.ml.training.configs);
``sweep_trial`` is mapped over them on the gpu queue, each a normal training run (experiment,
epochs or regularisation path, candidate model) tagged with its trial; ``pick_best`` keeps the
trial with the best validation macro F1 (ties: lower validation loss) for the promotion gate
and rejects the others with the reason. Validation, never the evaluation set, picks the best, so
the gate's judgement on the evaluation set stays unbiased.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from include.db.models import Experiment, ModelStatus, ModelVersion
from include.db.session import session_scope
from include.errors import Invalid
from include.ml.embeddings.backends import Embedder
from include.ml.training.configs import trials
from include.ml.training.params import TrainParams
from include.pipelines.catalog import DatasetValues, PlanSweepValues, SweepTrialValues, TrainValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.pipelines.train_classifier import run_train_classifier
from include.services import training_configs


def run_plan_sweep(db_url: str, run: RunRef, values: PlanSweepValues) -> list[dict[str, Any]]:
    """The trials to run: ``[{"trial": 1, "config": name, "params": {...}}, ...]``."""
    dataset_id, config_id = values.dataset_id, values.config_id
    with tracked_job(db_url, "plan_sweep", run, values) as job:
        if config_id is None:
            raise Invalid("choose a training config with a sweep section (config_id)")
        with session_scope(db_url) as session:
            row = training_configs.get(session, dataset_id, config_id)
            name, config = row.name, training_configs.as_config(row)
        if config.sweep is None:
            raise Invalid(f"training config {name!r} has no sweep section: train with it instead")
        seed = int(config.values.get("seed") or 0)
        planned = [
            {"trial": i, "config": name, "config_id": config_id, "params": values}
            for i, values in enumerate(trials(config.sweep, config.values, seed=seed), start=1)
        ]
        job.done(f"{len(planned)} trials of {name} ({config.sweep.method})", trials=len(planned))
    return planned


def run_sweep_trial(
    db_url: str,
    run: RunRef,
    values: SweepTrialValues,
    *,
    trial: dict[str, Any],
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """One trial: a training run on the same labels as its siblings (forced: no "nothing new" skip).

    An Optuna trial (``params`` None) first asks the sampler, given its finished siblings.
    """
    chosen, tags = trial["params"], {"sweep": trial["config"], "trial": trial["trial"]}
    if chosen is None:
        suggested, chosen = _suggest(db_url, run, values.dataset_id, trial)
        tags["suggested"] = suggested
    train = TrainValues(
        dataset_id=values.dataset_id,
        hyper=TrainParams.parse(chosen),
        embedding_model=values.embedding_model,
        min_labels=values.min_labels,
        force=True,
    )
    result = run_train_classifier(db_url, run, train, embedder=embedder, step="sweep_trial", tags=tags)
    return {**result, "trial": trial["trial"], "params": chosen}


def _suggest(db_url: str, run: RunRef, dataset_id: int, trial: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optuna's next swept parameters from this sweep run's finished trials (their validation F1),
    and the full parameter set (the config's fixed values with them)."""
    from include.ml.training.search import suggest

    with session_scope(db_url) as session:
        row = training_configs.get(session, dataset_id, int(trial["config_id"]))
        config = training_configs.as_config(row)
        finished = session.scalars(
            select(Experiment).where(
                Experiment.run_id == run.run_id,
                Experiment.dataset_id == dataset_id,
                Experiment.status == "finished",
            )
        ).all()
        history = [
            (dict(e.params["suggested"]), float(e.metrics["f1"]))
            for e in finished
            if e.params.get("sweep") == trial["config"] and "suggested" in e.params and "f1" in (e.metrics or {})
        ]
    if config.sweep is None:
        raise ValueError(f"training config {trial['config']!r} no longer has a sweep section")
    seed = int(config.values.get("seed") or 0)
    suggested = suggest(config.sweep, history, seed=seed)
    return suggested, {**config.values, **suggested}


def _score(result: dict[str, Any]) -> tuple[float, float]:
    metrics = result.get("metrics") or {}
    return float(metrics.get("f1", 0.0)), -float(metrics.get("val_loss", float("inf")))


def run_pick_best(db_url: str, run: RunRef, values: DatasetValues, *, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The best trial by validation (for the gate); the others are rejected, saying which won."""
    with tracked_job(db_url, "pick_best", run, values, params={"trials": len(results)}) as job:
        trained = [r for r in results if r and r.get("model_id")]
        if not trained:
            raise SkipStep("no trial produced a model")
        best = max(trained, key=_score)
        f1 = best["metrics"]["f1"]
        with session_scope(db_url) as session:
            for other in trained:
                if other is best:
                    continue
                model = session.get_one(ModelVersion, other["model_id"])
                model.status = ModelStatus.REJECTED
                model.reason = (
                    f"sweep: trial {other['trial']} (validation F1 {other['metrics']['f1']:.3f}) lost to "
                    f"trial {best['trial']} ({f1:.3f})"
                )
        job.done(
            f"trial {best['trial']} of {len(trained)} is best (validation F1 {f1:.3f}): "
            f"{best['version']} goes to the gate",
            trials=len(trained),
        )
        job.result = {
            "model_id": best["model_id"],
            "version": best["version"],
            "metrics": best["metrics"],
            "trial": best["trial"],
            "experiment_ids": [r["experiment_id"] for r in trained],
        }
    return job.result

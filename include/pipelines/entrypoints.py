"""What each DAG task calls: one function per step, named like the step (and its task and job).

Each reads its step's declared parameters (:mod:`include.pipelines.catalog`) from the run, resolves
the database and Label Studio, and runs the step. DAG files stay free of logic and of heavy
imports: every function imports its pipeline (and torch, sentence-transformers...) only when the
task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.pipelines.catalog import STEPS
from include.pipelines.runner import RunRef


def run_ref(context: Mapping[str, Any]) -> RunRef:
    """The Airflow run a task belongs to, from its context."""
    dag_run = context.get("dag_run")
    if dag_run is None:
        return RunRef()
    ti = context.get("ti")
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    return RunRef(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        task_id=getattr(ti, "task_id", None),
        map_index=int(map_index) if map_index is not None else -1,
        try_number=int(try_number) if try_number else None,
    )


def step_values(step: str, context: Mapping[str, Any], dataset_id: int | None = None) -> Any:
    """The step's typed values (its one frozen type, include.pipelines.catalog) from the run's
    params; a mapped task's ``dataset_id`` wins."""
    given = {} if dataset_id is None else {"dataset_id": dataset_id}
    return STEPS[step].values(context.get("params") or {}, **given)


def ls_import(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.resources import ls_client, platform_db_url

    settings = load_settings()
    return run_ls_import(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        step_values("ls_import", context),
        default_project_id=settings.ls_project_id,
        ml_backend=ml_backend_ref(settings),
        webhook=webhook_ref(settings),
    )


def ml_backend_ref(settings: Any) -> Any:
    """The platform's ML backend for new Label Studio projects, when ML_BACKEND_URL is set."""
    from include.services.ls_projects import MlBackendRef

    if not settings.ml_backend_url:
        return None
    return MlBackendRef(settings.ml_backend_url, settings.ml_backend_user, settings.ml_backend_password)


def webhook_ref(settings: Any) -> Any:
    """The platform's webhook receiver for new Label Studio projects, when WEBHOOK_URL is set."""
    from include.services.ls_projects import WebhookRef

    if not settings.webhook_url:
        return None
    return WebhookRef(settings.webhook_url, settings.webhook_secret)


def deidentify(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    """De-identify the dataset's pending items (every dataset with a policy when none is given)."""
    from include.config import load_settings
    from include.pipelines.deidentify import run_deidentify
    from include.pipelines.resources import platform_db_url

    settings = load_settings()
    return run_deidentify(
        platform_db_url(settings), run_ref(context), settings, step_values("deidentify", context, dataset_id)
    )


def rotate_pii_key(context: Mapping[str, Any]) -> dict[str, Any]:
    """Re-encrypt every mapping with the new PII_KEY (PII_KEY_PREVIOUS opens the old ones)."""
    from include.config import load_settings
    from include.pipelines.resources import platform_db_url
    from include.pipelines.rotate_pii_key import run_rotate_pii_key

    settings = load_settings()
    return run_rotate_pii_key(
        platform_db_url(settings), run_ref(context), settings, step_values("rotate_pii_key", context)
    )


def housekeeping(context: Mapping[str, Any]) -> dict[str, Any]:
    """Retention, and every owned project's webhook re-checked (when WEBHOOK_URL is set)."""
    from include.config import load_settings
    from include.pipelines.housekeeping import run_housekeeping
    from include.pipelines.resources import ls_client, platform_db_url

    settings = load_settings()
    webhook = webhook_ref(settings)
    return run_housekeeping(
        platform_db_url(settings),
        ls_client(settings) if webhook is not None else None,
        run_ref(context),
        step_values("housekeeping", context),
        webhook=webhook,
    )


def triggering_datasets(context: Mapping[str, Any]) -> list[int] | None:
    """The datasets named by the asset events that started this run; None when no event did (a
    run on the clock or by hand)."""
    events = [e for batch in (context.get("triggering_asset_events") or {}).values() for e in batch]
    if not events:
        return None
    found: set[int] = set()
    for event in events:
        extra = getattr(event, "extra", None) or {}
        named = [extra.get("dataset_id"), *(extra.get("dataset_ids") or [])]
        found.update(int(d) for d in named if isinstance(d, int) and not isinstance(d, bool))
    return sorted(found)


def ls_export(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.resources import ls_client, platform_db_url

    values = step_values("ls_export", context)
    settings = load_settings()
    return run_ls_export(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        values,
        only=triggering_datasets(context) if values.dataset_id is None else None,
    )


def live_loop_due(context: Mapping[str, Any], exported: Mapping[str, Any], outlet: Any) -> list[int]:
    """Datasets of this export with enough new labels for a quick loop: emits one ``labels_ready``
    event naming them, or skips (no event) when none is due."""
    from airflow.sdk.exceptions import AirflowSkipException

    from include.db.session import session_scope
    from include.pipelines.resources import platform_db_url
    from include.services import live_loop
    from include.services.datasets import datasets_of_projects

    projects = [int(p) for p in exported.get("projects") or []]
    with session_scope(platform_db_url()) as session:
        candidates = [d.id for d in datasets_of_projects(session, projects)]
        run_id = run_ref(context).run_id
        # Another process deciding right now (the web app's signaller) sends what is due.
        due = live_loop.due(session, candidates, run_id) if live_loop.decide_alone(session) else []
        live_loop.mark_started(session, [d.dataset_id for d in due], run_id)
    if not due:
        raise AirflowSkipException("no dataset has enough new labels for the live loop")
    context["outlet_events"][outlet].extra = {
        "dataset_ids": [d.dataset_id for d in due],
        "new_labels": {str(d.dataset_id): d.new_labels for d in due},
    }
    return [d.dataset_id for d in due]


def loop_datasets(context: Mapping[str, Any]) -> list[int]:
    """Datasets the loop works on: the one asked for, those whose new labels started this run
    (live loop), or every dataset in Label Studio (nightly)."""
    from include.db.session import session_scope
    from include.pipelines.resources import platform_db_url
    from include.services import live_loop
    from include.services.datasets import datasets_in_label_studio

    values = step_values("loop_datasets", context)
    only = triggering_datasets(context) if values.dataset_id is None else None
    with session_scope(platform_db_url()) as session:
        found = datasets_in_label_studio(session, values.dataset_id)
        chosen = found if only is None else [d for d in found if d in only]
        live_loop.mark_picked_up(session, chosen)
    return chosen


def embed_items(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.pipelines.embed_items import run_embed_items
    from include.pipelines.resources import platform_db_url

    return run_embed_items(
        platform_db_url(),
        run_ref(context),
        step_values("embed_items", context, dataset_id),
        defer_index=True,  # the DAG builds the index in its own task (build_index)
    )


def build_index(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.pipelines.embed_items import run_build_index
    from include.pipelines.resources import platform_db_url

    return run_build_index(platform_db_url(), run_ref(context), step_values("build_index", context))


def loop_train(context: Mapping[str, Any], dataset_id: int) -> dict[str, Any]:
    """The loop's training step: fine-tune the encoder when due, else train a head on the serving
    tuned encoder (or the run's embedding model). Why: include.services.retune."""
    from include.pipelines.loop_train import choose
    from include.pipelines.resources import platform_db_url

    retune_at = step_values("loop_train", context, dataset_id).retune_at_labels
    choice = choose(platform_db_url(), dataset_id, retune_at)
    if choice.retune:
        return finetune_encoder(context, dataset_id, reason=choice.retune)
    return train_classifier(context, dataset_id, embedding_model=choice.encoder)


def train_classifier(
    context: Mapping[str, Any], dataset_id: int | None = None, *, embedding_model: str | None = None
) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.train_classifier import run_train_classifier

    values = step_values("train_classifier", context, dataset_id)
    if embedding_model is not None:  # the loop's choice: the serving tuned encoder
        values = values.replace(embedding_model=embedding_model)
    return run_train_classifier(platform_db_url(), run_ref(context), values)


def finetune_encoder(
    context: Mapping[str, Any], dataset_id: int | None = None, *, reason: str | None = None
) -> dict[str, Any]:
    from include.pipelines.finetune_encoder import run_finetune_encoder
    from include.pipelines.resources import platform_db_url

    values = step_values("finetune_encoder", context, dataset_id)
    return run_finetune_encoder(platform_db_url(), run_ref(context), values, reason=reason)


def plan_sweep(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.sweep import run_plan_sweep

    return run_plan_sweep(platform_db_url(), run_ref(context), step_values("plan_sweep", context))


def sweep_trial(context: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.sweep import run_sweep_trial

    return run_sweep_trial(platform_db_url(), run_ref(context), step_values("sweep_trial", context), trial=dict(trial))


def pick_best(context: Mapping[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.sweep import run_pick_best

    return run_pick_best(platform_db_url(), run_ref(context), step_values("pick_best", context), results=list(results))


def gate(context: Mapping[str, Any], trained: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.training.gate import run_gate

    values = step_values("gate", context, dataset_id)
    return run_gate(platform_db_url(), run_ref(context), values, model_id=(trained or {}).get("model_id"))


def quality_check(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.pipelines.quality_check import run_quality_check
    from include.pipelines.resources import platform_db_url

    return run_quality_check(platform_db_url(), run_ref(context), step_values("quality_check", context))


def snapshot_labels(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.snapshot_labels import run_snapshot_labels

    return run_snapshot_labels(platform_db_url(), run_ref(context), step_values("snapshot_labels", context))


def batch_inference(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.pipelines.batch_inference import run_batch_inference
    from include.pipelines.resources import platform_db_url

    return run_batch_inference(platform_db_url(), run_ref(context), step_values("batch_inference", context))


def baseline_probe(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.baseline_probe import run_baseline_probe
    from include.pipelines.resources import platform_db_url

    settings = load_settings()
    values = step_values("baseline_probe", context)
    return run_baseline_probe(platform_db_url(settings), run_ref(context), settings, values)


def prelabel(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.prelabel import run_prelabel
    from include.pipelines.resources import ls_client, platform_db_url

    settings = load_settings()
    values = step_values("prelabel", context, dataset_id)
    return run_prelabel(platform_db_url(settings), ls_client(settings), run_ref(context), settings, values)


def score_uncertainty(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.score_uncertainty import run_score_uncertainty

    values = step_values("score_uncertainty", context, dataset_id)
    return run_score_uncertainty(platform_db_url(), run_ref(context), values)

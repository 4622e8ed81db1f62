"""What each DAG task calls: read settings, resolve the database and Label Studio, run one step.

DAG files stay free of logic and of heavy imports: every function here imports its pipeline
(and torch, sentence-transformers...) only when the task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.pipelines.runner import RunRef


def run_ref(context: Mapping[str, Any]) -> RunRef:
    """The Airflow run a task belongs to, from its context."""
    dag_run = context.get("dag_run")
    if dag_run is None:
        return RunRef()
    return RunRef(dag_id=dag_run.dag_id, run_id=dag_run.run_id)


def _optional_int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    return None if value in (None, "") else int(value)


def ls_import(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.resources import ls_client, platform_db_url

    params = context.get("params") or {}
    settings = load_settings()
    return run_ls_import(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        dataset_id=_optional_int(params, "dataset_id"),
        limit=_optional_int(params, "limit"),
        batch_size=int(params.get("batch_size") or 5000),
        default_project_id=settings.ls_project_id,
    )


def ls_export(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.resources import ls_client, platform_db_url

    params = context.get("params") or {}
    settings = load_settings()
    return run_ls_export(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        dataset_id=dataset_id if dataset_id is not None else _optional_int(params, "dataset_id"),
        full=bool(params.get("full")),
    )


def embed_items(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.ml.embeddings.backends import DEFAULT_MODEL
    from include.pipelines.embed_items import run_embed_items
    from include.pipelines.resources import platform_db_url

    params = context.get("params") or {}
    return run_embed_items(
        platform_db_url(),
        run_ref(context),
        dataset_id=dataset_id if dataset_id is not None else _optional_int(params, "dataset_id"),
        model_name=str(params.get("embedding_model") or DEFAULT_MODEL),
        batch_size=int(params.get("batch_size") or 2048),
        defer_index=True,  # the DAG builds the index in its own task (index_embeddings)
    )


def index_embeddings(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.ml.embeddings.backends import DEFAULT_MODEL
    from include.pipelines.embed_items import run_index_embeddings
    from include.pipelines.resources import platform_db_url

    params = context.get("params") or {}
    return run_index_embeddings(
        platform_db_url(), run_ref(context), model_name=str(params.get("embedding_model") or DEFAULT_MODEL)
    )


def train(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.config import load_settings
    from include.ml.embeddings.backends import DEFAULT_MODEL
    from include.ml.training.train import TrainParams
    from include.pipelines.resources import platform_db_url
    from include.pipelines.train_classifier import run_train

    params = context.get("params") or {}
    settings = load_settings()
    train_params = TrainParams(
        kind=str(params.get("model_kind") or "mlp"),
        epochs=int(params.get("epochs") or 200),
        batch_size=int(params.get("batch_size") or 64),
        lr=float(params["lr"]) if params.get("lr") else None,
        patience=int(params.get("patience") or 8),
        val_fraction=float(params.get("val_fraction") or 0.2),
        seed=int(params.get("seed") or 0),
    )
    return run_train(
        platform_db_url(settings),
        run_ref(context),
        dataset_id=int(dataset_id if dataset_id is not None else params["dataset_id"]),
        params=train_params,
        model_dir=settings.model_dir,
        embedding_model=str(params.get("embedding_model") or DEFAULT_MODEL),
        min_labels=int(params.get("min_labels") or 20),
        force=bool(params.get("force")),
    )


def gate(context: Mapping[str, Any], trained: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.train_classifier import run_gate

    params = context.get("params") or {}
    return run_gate(
        platform_db_url(),
        run_ref(context),
        dataset_id=int(dataset_id if dataset_id is not None else params["dataset_id"]),
        model_id=(trained or {}).get("model_id"),
        min_f1=float(params.get("min_f1") or 0.6),
    )


def prelabel(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.prelabel import run_prelabel
    from include.pipelines.resources import ls_client, platform_db_url

    params = context.get("params") or {}
    settings = load_settings()
    return run_prelabel(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        settings,
        dataset_id=int(dataset_id if dataset_id is not None else params["dataset_id"]),
        backend=str(params.get("backend") or "auto"),
        limit=_optional_int(params, "limit"),
        only_new=params.get("only_new", True) is not False,
    )


def score(context: Mapping[str, Any], dataset_id: int | None = None) -> dict[str, Any]:
    from include.pipelines.resources import platform_db_url
    from include.pipelines.score_uncertainty import run_score_uncertainty

    params = context.get("params") or {}
    return run_score_uncertainty(
        platform_db_url(),
        run_ref(context),
        dataset_id=int(dataset_id if dataset_id is not None else params["dataset_id"]),
        strategy=str(params.get("strategy") or "least_confidence"),
        limit=_optional_int(params, "limit"),
        only_unlabeled=params.get("only_unlabeled", True) is not False,
    )


def loop_datasets(context: Mapping[str, Any]) -> list[int]:
    """Datasets the nightly loop works on: the one asked for, or every dataset in Label Studio."""
    from sqlalchemy import select

    from include.db.models import Dataset
    from include.db.session import session_scope
    from include.pipelines.resources import platform_db_url

    params = context.get("params") or {}
    wanted = _optional_int(params, "dataset_id")
    with session_scope(platform_db_url()) as session:
        stmt = select(Dataset.id).where(Dataset.ls_project_id.is_not(None)).order_by(Dataset.id)
        if wanted is not None:
            stmt = stmt.where(Dataset.id == wanted)
        return [int(i) for i in session.scalars(stmt)]

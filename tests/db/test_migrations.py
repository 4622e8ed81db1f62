"""Alembic owns the schema: it upgrades and downgrades cleanly on real PostgreSQL + pgvector,
and the models and the migrations agree."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from include.db.migrate import alembic_config, downgrade, upgrade

EXPECTED_TABLES = {
    "users",
    "datasets",
    "items",
    "tasks",
    "annotations",
    "reviews",
    "gold_answers",
    "gold_alerts",
    "jobs",
    "ls_projects",
    "ls_echoes",
    "embedding_models",
    "embeddings",
    "experiments",
    "experiment_epochs",
    "models",
    "task_counts",
    "login_throttle",
    "job_attempts",
    "label_outbox",
    "eval_items",
    "experiment_items",
    "model_evaluations",
    "pii_policies",
    "pii_mappings",
    "pii_reveals",
    "quality_reports",
    "task_extra_assignees",
    "snapshots",
    "snapshot_items",
    "inference_runs",
    "inference_inputs",
    "inference_results",
    "training_configs",
    "ls_webhooks",
    "key_fingerprints",
    "ls_instances",
    "guideline_versions",
    "task_flags",
}


@pytest.fixture
def fresh_url(pg):
    pg.drop_database("migrations_test")
    url = pg.ensure_database("migrations_test")
    yield url
    pg.drop_database("migrations_test")


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert _tables(fresh_url) == EXPECTED_TABLES
    engine = create_engine(fresh_url)
    with engine.connect() as conn:  # privacy by default: the platform's policy is there from the start
        defaults = conn.execute(text("SELECT name, entities FROM pii_policies WHERE is_default")).all()
    engine.dispose()
    assert [name for name, _ in defaults] == ["Platform default"] and "PHONE" in defaults[0][1]
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
        indexes = {row[0] for row in conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'"))}
    engine.dispose()
    assert {"ix_tasks_assignee_status_priority", "ix_tasks_unassigned_queue", "uq_tasks_ls_project_task"} <= indexes

    downgrade(fresh_url, "base")
    assert _tables(fresh_url) == set()
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")) == 0
    engine.dispose()

    upgrade(fresh_url)
    assert _tables(fresh_url) == EXPECTED_TABLES
    engine = create_engine(fresh_url)
    with engine.connect() as conn:  # privacy by default: the platform's policy is there from the start
        defaults = conn.execute(text("SELECT name, entities FROM pii_policies WHERE is_default")).all()
    engine.dispose()
    assert [name for name, _ in defaults] == ["Platform default"] and "PHONE" in defaults[0][1]


def test_models_match_migrations(fresh_url: str) -> None:
    """`alembic check`: autogenerate finds nothing to add, so no table is created outside Alembic."""
    upgrade(fresh_url)
    command.check(alembic_config(fresh_url))


def test_an_upgraded_database_learns_which_texts_were_trained(fresh_url: str) -> None:
    """Texts trained before 0005 had no mark: 0020 sets it from the experiments' lineage, so they
    can never join the evaluation set of the models that learned them."""
    upgrade(fresh_url, "0019")
    engine = create_engine(fresh_url)
    with engine.begin() as conn:
        dataset = conn.scalar(
            text("INSERT INTO datasets (name, labels) VALUES ('old', '[\"OK\", \"NG\"]') RETURNING id")
        )
        items = [
            conn.scalar(
                text("INSERT INTO items (dataset_id, text, text_hash) VALUES (:d, :t, :h) RETURNING id"),
                {"d": dataset, "t": f"text {k}", "h": f"{k:064d}"},
            )
            for k in range(3)
        ]
        for k, item in enumerate(items):
            conn.execute(
                text("INSERT INTO tasks (dataset_id, item_id, ls_project_id, ls_task_id) VALUES (:d, :i, 1, :k)"),
                {"d": dataset, "i": item, "k": k + 1},
            )
        experiment = conn.scalar(
            text(
                "INSERT INTO experiments (name, dataset_id, params, status, device, n_train, n_val)"
                " VALUES ('old run', :d, '{}', 'finished', 'cpu', 1, 1) RETURNING id"
            ),
            {"d": dataset},
        )
        for k, split in ((0, "train"), (1, "val")):
            conn.execute(
                text("INSERT INTO experiment_items (experiment_id, text_hash, split) VALUES (:e, :h, :s)"),
                {"e": experiment, "h": f"{k:064d}", "s": split},
            )
    upgrade(fresh_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT i.text, t.first_trained_at IS NOT NULL FROM tasks t JOIN items i ON i.id = t.item_id")
        ).all()
    marked = {str(t): bool(m) for t, m in rows}
    engine.dispose()
    assert marked == {"text 0": True, "text 1": True, "text 2": False}

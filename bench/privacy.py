"""Where do original personal values end up? A dataset with seeded personal data goes through
upload (searched once before de-identification too: what waits for that step is sealed),
de-identification, import into a real Label Studio, labeling there, export back,
embedding, pre-labeling (as Label Studio predictions), a quality report and a labeled export
file; then every table of the platform's database (each row as text), every file under the
platform's home outside PostgreSQL's own data, Label Studio's database file and its export, and
the log of the run are searched for each original value.

Two scenarios:

* ``by_default``: the dataset is created as a new user would, without choosing: the platform's
  default policy applies (privacy by default), and the upload carries a ``customer_name`` and a
  ``phone`` column beside the text.
* ``policy_after_import``: the dataset is first recorded as holding no personal data, imported
  and labeled, and only then given a policy (a mistake found late): de-identification, then the
  import run that rewrites Label Studio's copy of each task. What the later policy still does
  not reach is counted, place by place.

Goal (issue 22): 0 originals anywhere, in both.
"""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from pathlib import Path
from typing import Any

from bench._env import label_studio, postgres, save, scratch

SEED = 20261207
N = 60


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"


def _rows(rng: random.Random) -> tuple[str, list[str]]:
    """A CSV upload with seeded personal values, and those values."""
    lines, originals = ["text,customer_name,phone"], []
    for i in range(N):
        phone, other, mail = _phone(rng), _phone(rng), f"user{rng.randint(1000, 9999)}x{i}@example.com"
        text = rng.choice(
            (
                f"Customer asks for a refund, call back on {phone}. Ticket {i}",
                f"客户来电，手机{phone}，屏幕碎了，第{i}单",
                f"Please email {mail} about order {i}, the charger is broken",
            )
        )
        originals += [phone, other] + ([mail] if mail in text else [])
        lines.append(f'"{text}",Customer {i},{other}')
    return "\n".join(lines) + "\n", originals


def _search(originals: list[str], places: dict[str, str]) -> dict[str, int]:
    found = {place: sum(1 for value in set(originals) if value in blob) for place, blob in places.items()}
    return {place: n for place, n in found.items() if n}


def _places(db: str, client: Any, project_ids: list[int], home: Path, ls_data: Path) -> dict[str, str]:
    """Every place an original could be: tables (rows as text), files, Label Studio, logs."""
    from sqlalchemy import inspect, text

    from include.db.session import get_engine

    places: dict[str, str] = {}
    engine = get_engine(db)
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            rows = conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
            places[f"table {table}"] = "\n".join(rows)
    for path in home.rglob("*"):
        if path.is_file() and "postgres" not in path.parts:
            places[f"file {path.relative_to(home)}"] = path.read_bytes().decode("utf-8", "ignore")
    for path in ls_data.rglob("*"):
        if path.is_file():
            places[f"label studio {path.relative_to(ls_data)}"] = path.read_bytes().decode("utf-8", "ignore")
    for project_id in project_ids:
        exported = client.request("GET", f"/api/projects/{project_id}/export", params={"exportType": "JSON"})
        places[f"label studio export of project {project_id}"] = json.dumps(exported, ensure_ascii=False)
    return places


def _scenario(db: str, client: Any, home: Path, ls_data: Path, *, late_policy: bool) -> dict[str, Any]:
    from include.config import load_settings
    from include.db.models import Dataset, Task
    from include.db.session import session_scope
    from include.labelstudio.label_config import choice_result
    from include.ml.embeddings.backends import SentenceTransformerEmbedder
    from include.pipelines.catalog import AnyDatasetValues, DatasetValues, ExportValues, ImportValues, PrelabelValues
    from include.pipelines.deidentify import run_deidentify
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.prelabel import run_prelabel
    from include.pipelines.quality_check import run_quality_check
    from include.pipelines.runner import RunRef
    from include.pipelines.training.embedding import embed_dataset
    from include.services import export, pii, privacy
    from include.services.datasets import add_items, create_dataset, parse_upload

    rng = random.Random(SEED + late_policy)
    csv_text, originals = _rows(rng)
    upload = parse_upload(csv_text.encode(), "tickets.csv")
    settings = load_settings()
    key = pii.key_of(settings.pii_key)
    tag = uuid.uuid4().hex[:6]
    with session_scope(db) as s:
        late = privacy.Decision.none_needed("assumed free of personal data")
        decision = late if late_policy else privacy.PLATFORM_DEFAULT
        dataset = create_dataset(s, f"privacy-{tag}", labels=["OK", "NG"], privacy=decision)
        add_items(s, dataset, upload.rows, key=key)
        dataset_id = dataset.id
    # Before the deidentify step: an upload waits sealed (issue 22: no plaintext at rest).
    # (In the late scenario they are stored as uploaded, by that first decision.)
    at_rest = None if late_policy else _search(originals, _places(db, client, [], home, ls_data))
    if not late_policy:  # the import DAG's first step
        run_deidentify(db, RunRef(), settings, AnyDatasetValues(dataset_id=dataset_id))
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        ls_ids = s.scalars(select_tasks(Task, dataset_id)).all()
        project_id = int(s.get_one(Dataset, dataset_id).ls_project_id or 0)
    for ls_id in ls_ids[:20]:
        client.create_annotation(ls_id, choice_result(rng.choice(["OK", "NG"])))
    run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))
    if late_policy:
        with session_scope(db) as s:
            privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.PLATFORM_DEFAULT, None, key)
        run_deidentify(db, RunRef(), settings, AnyDatasetValues(dataset_id=dataset_id))
        run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))  # the DAG's next step
    embedder = SentenceTransformerEmbedder()
    embed_dataset(db, embedder, dataset_id)
    run_prelabel(db, client, RunRef(), settings, PrelabelValues(dataset_id=dataset_id, backend="similarity"),
                 embedder=embedder)  # fmt: skip
    run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=embedder)
    with session_scope(db) as s:
        out = home / f"export-{tag}.csv"
        out.write_bytes(b"".join(export.chunks(s, export.ExportRequest(dataset_id, "csv"))))
        pending = pii.pending_count(s, dataset_id)
    found = _search(originals, _places(db, client, [project_id], home, ls_data))
    return {
        "originals_seeded": len(set(originals)),
        "items_pending": pending,
        "originals_at_rest_before_deidentify": None if at_rest is None else sum(at_rest.values()),
        "places_holding_originals": found,
        "originals_found_anywhere": sum(found.values()),
    }


def select_tasks(task: Any, dataset_id: int) -> Any:
    from sqlalchemy import select

    return select(task.ls_task_id).where(task.dataset_id == dataset_id).order_by(task.id)


def main() -> None:
    from cryptography.fernet import Fernet

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PII_KEY"] = Fernet.generate_key().decode()
    home = scratch() / "home"
    (home / "logs").mkdir(parents=True, exist_ok=True)
    os.environ["LABELOPS_HOME"] = str(home)
    handler = logging.FileHandler(home / "logs" / "bench-privacy.log")
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    with postgres("privacy") as db, label_studio() as (url, token):
        from include.labelstudio.client import LabelStudioClient

        client = LabelStudioClient(url, token)
        ls_data = next(p for p in scratch().glob("ls-*/data"))  # bench._env.label_studio's folder
        results = {
            "by_default": _scenario(db, client, home, ls_data, late_policy=False),
            "policy_after_import": _scenario(db, client, home, ls_data, late_policy=True),
        }
    save("privacy", {"items_per_scenario": N, **results, "goal": "0 originals anywhere, in both scenarios"})


if __name__ == "__main__":
    main()

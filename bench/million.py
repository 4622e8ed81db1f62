"""The loop's stages on one big dataset, each with its wall time, the bench process's peak memory
during it, and a raw baseline beside it where one exists (real Label Studio on SQLite, embedded
PostgreSQL, 2 cores).

Default ``--items 100000``: on this CPU embedding a million texts takes about an hour (~300
texts/s), so the loop is measured at 100k and the per-item rates say what 1M would take.
Stages: add items; ``ls_import`` (raw: bulk POSTs of the same tasks to a fresh project);
embed with the default encoder (raw: ``model.encode`` of a 5,000-text sample, as a rate); the
HNSW build; ``prelabel`` by similarity (raw: the same predictions bulk-POSTed to a like project,
bench/prelabel.py); ``score_uncertainty``; the JSONL export (raw: a bare server-side cursor over
the same rows, bench/export.py). Training and the gate need labels from people and are measured
in bench/scoring_training.py and bench/gate.py; de-identification in bench/pii.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench._env import label_studio, postgres, save, setup_airflow_env

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


@contextmanager
def _stage(results: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Wall time and peak RSS (sampled every 50 ms) of one stage; the block adds its own figures."""
    row: dict[str, Any] = {}
    peak = [_rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss_mb())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        yield row
    finally:
        row["seconds"] = round(time.perf_counter() - started, 2)
        stop.set()
        watcher.join()
        row["peak_rss_mb"] = round(max(peak[0], _rss_mb()), 1)
        results[name] = row
        print(name, row, flush=True)


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.million")
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])  # python -m bench: defaults
    setup_airflow_env()

    from bench.prelabel import Timings, _raw
    from include.config import load_settings
    from include.db.models import Dataset
    from include.db.session import session_scope
    from include.demo.texts import generate_demo_texts
    from include.labelstudio.client import LabelStudioClient
    from include.labelstudio.label_config import build_label_config
    from include.ml.embeddings.backends import SentenceTransformerEmbedder
    from include.pipelines.catalog import ImportValues, PrelabelValues, ScoreValues
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.prelabel import run_prelabel
    from include.pipelines.runner import RunRef
    from include.pipelines.score_uncertainty import run_score_uncertainty
    from include.pipelines.training.embedding import build_index, embed_dataset
    from include.services import export
    from include.services.datasets import add_items, create_dataset
    from include.services.privacy import SYNTHETIC

    n = args.items
    texts = [t.text for t in generate_demo_texts(n, seed=7, ambiguous=0.3)]
    results: dict[str, Any] = {}
    with postgres("million") as db, label_studio() as (url, token):
        client = LabelStudioClient(url, token, timeout=1200)
        with _stage(results, "add_items") as row, session_scope(db) as s:
            ds = create_dataset(s, f"million-{uuid.uuid4().hex[:6]}", labels=["OK", "NG"], privacy=SYNTHETIC)
            add_items(s, ds, ((t, {}) for t in texts))
            dataset_id = ds.id
        with _stage(results, "ls_import") as row:
            run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id, batch_size=5000))
        project = client.create_project(f"raw {uuid.uuid4().hex[:6]}", build_label_config(["OK", "NG"]))
        payloads = [{"data": {"text": t}} for t in texts]
        raw_import = _timed(
            lambda: [client.import_tasks(project["id"], payloads[i : i + 5000]) for i in range(0, n, 5000)]
        )
        results["add_items"]["per_s"] = round(n / results["add_items"]["seconds"])
        results["ls_import"] |= {
            "raw_s": round(raw_import, 2),
            "ratio": round(results["ls_import"]["seconds"] / raw_import, 3),
        }

        embedder = SentenceTransformerEmbedder()
        sample = texts[:5000]
        model = embedder.sentence_transformer()
        raw_rate = len(sample) / _timed(
            lambda: model.encode(sample, batch_size=128, normalize_embeddings=True, show_progress_bar=False)
        )
        with _stage(results, "embed") as row:
            info = embed_dataset(db, embedder, dataset_id, defer_index=True)
        results["embed"] |= {
            "runtime": embedder.runtime_in_use(),
            "texts_per_s": round(n / results["embed"]["seconds"]),
            "raw_torch_encode_texts_per_s": round(raw_rate),
        }
        with _stage(results, "hnsw_index") as row:
            build_index(db, info["model_id"])

        timings = Timings(client)
        with _stage(results, "prelabel") as row:
            result = run_prelabel(
                db, client, RunRef(), load_settings(), PrelabelValues(dataset_id=dataset_id), embedder=embedder
            )
        for name in ("delete_predictions", "import_predictions", "update_project"):
            vars(client).pop(name, None)
        with session_scope(db) as s:
            project_id = int(s.get_one(Dataset, dataset_id).ls_project_id or 0)
        raw = _raw(client, project_id, timings.payloads)
        results["prelabel"] |= {
            "predictions": result["ls_predictions"],
            "per_s": round(result["ls_predictions"] / results["prelabel"]["seconds"]),
            "raw_per_s": round(raw["per_s"]),
            "ratio_vs_raw": round(result["ls_predictions"] / results["prelabel"]["seconds"] / raw["per_s"], 3),
        }
        with _stage(results, "score_uncertainty") as row:
            scored = run_score_uncertainty(db, RunRef(), ScoreValues(dataset_id=dataset_id))
        results["score_uncertainty"]["scored"] = scored.get("scored")

        from sqlalchemy import text

        from include.db.session import get_engine

        with get_engine(db).begin() as conn:  # everyone labeled: the export's worst case
            conn.execute(
                text(
                    "UPDATE tasks SET status = 'labeled', label = prelabel_label, labeled_at = now() "
                    "WHERE dataset_id = :d"
                ),
                {"d": dataset_id},
            )
        with session_scope(db) as s:
            bare = _timed(lambda: sum(len(b) for b in export._tuples(s, export.ExportRequest(dataset_id, "parquet"))))
        with _stage(results, "export_jsonl") as row, session_scope(db) as s:
            row["bytes"] = sum(len(c) for c in export.chunks(s, export.ExportRequest(dataset_id, "jsonl")))
        results["export_jsonl"] |= {
            "rows_per_s": round(n / results["export_jsonl"]["seconds"]),
            "bare_cursor_rows_per_s": round(n / bare),
        }
    total = sum(r["seconds"] for r in results.values())
    save(
        "million",
        {
            "items": n,
            "stages": results,
            "total_s": round(total, 1),
            "note": "measured at 100k on CPU (embedding 1M here takes about an hour); per-item rates scale",
        },
    )


if __name__ == "__main__":
    main()

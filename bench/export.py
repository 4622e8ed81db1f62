"""Labeled-data export at 1,000,000 rows: rows/s and peak RSS per format.

A dataset of 1M labeled tasks (Chinese, emoji, quotes and a formula-looking cell in the texts;
one or two annotations each; 2 % in the eval set) is exported as CSV, JSONL and Parquet, each in
its own child process so that its peak RSS is its own (``ru_maxrss`` of the child). The same
child first reads the same rows through a bare server-side cursor (psycopg tuples, nothing
formatted): the baseline the export's rows/s is a ratio of. Goals: >= 100k rows/s for CSV and JSONL,
>= 80k for Parquet, peak RSS < 300 MB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

from bench._env import REPO, postgres, save

N_ROWS = 1_000_000
FORMATS = ("csv", "jsonl", "parquet")


def populate(db: str, n: int = N_ROWS) -> int:
    from sqlalchemy import text

    from include.db.session import get_engine

    with get_engine(db).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash, role) "
                "SELECT 'ann' || g, 'ann' || g || '@b.io', 'x', 'annotator' FROM generate_series(1, 20) g"
            )
        )
        dataset_id = conn.execute(
            text(
                "INSERT INTO datasets (name, labels, ls_project_id) VALUES ('big', '[\"OK\", \"NG\"]', 1) RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                """
                INSERT INTO items (dataset_id, text, text_hash, source)
                SELECT :d, CASE WHEN g % 1000 = 0 THEN '=HYPERLINK("x") ' ELSE '' END ||
                       'Inspection note ' || g || ': 屏幕碎了 😡 the unit "works", checked twice,' || chr(10) || 'ok',
                       md5(g::text) || md5((g + 7)::text), '{}'
                FROM generate_series(1, :n) g
                """
            ),
            {"d": dataset_id, "n": n},
        )
        conn.execute(
            text(
                """
                INSERT INTO tasks (dataset_id, item_id, ls_project_id, ls_task_id, status, label, labeled_at,
                                   prelabel_label, prelabel_score, model_version, uncertainty_score)
                SELECT :d, i.id, 1, i.id, 'labeled', CASE WHEN i.id % 3 = 0 THEN 'NG' ELSE 'OK' END, now(),
                       'OK', 0.5 + (i.id % 50) / 100.0, 'logistic-ds1-e1', (i.id % 100) / 100.0
                FROM items i WHERE i.dataset_id = :d
                """
            ),
            {"d": dataset_id},
        )
        conn.execute(
            text(
                """
                INSERT INTO annotations (task_id, annotator_id, label, source)
                SELECT t.id, 1 + t.id % 20, t.label, 'webapp' FROM tasks t WHERE t.dataset_id = :d
                UNION ALL
                SELECT t.id, 1 + (t.id + 1) % 20, 'NG', 'webapp' FROM tasks t WHERE t.dataset_id = :d AND t.id % 10 = 0
                """
            ),
            {"d": dataset_id},
        )
        conn.execute(
            text(
                "INSERT INTO eval_items (dataset_id, text_hash, source) "
                "SELECT :d, text_hash, 'sample' FROM items WHERE dataset_id = :d AND id % 50 = 0"
            ),
            {"d": dataset_id},
        )
        conn.execute(text("ANALYZE"))
    return int(dataset_id)


def one(db: str, dataset_id: int, fmt: str) -> dict[str, Any]:
    """In a child process: the bare cursor read, then the export; bytes, seconds, peak RSS."""

    from include.db.session import session_scope
    from include.services import export

    with session_scope(db) as session:
        started = time.perf_counter()
        bare_rows = sum(len(batch) for batch in export._tuples(session, export.ExportRequest(dataset_id, "parquet")))
        bare = time.perf_counter() - started
    rss_after_bare = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with session_scope(db) as session:
        started = time.perf_counter()
        size = 0
        for chunk in export.chunks(session, export.ExportRequest(dataset_id, fmt)):
            size += len(chunk)
        seconds = time.perf_counter() - started
    return {
        "rows": bare_rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_s": round(bare_rows / seconds),
        "bare_cursor_rows_per_s": round(bare_rows / bare),
        "ratio_vs_bare_cursor": round(bare / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_bare_read_mb": round(rss_after_bare / 1024, 1),
    }


def main() -> None:
    with postgres("export") as db:
        started = time.perf_counter()
        dataset_id = populate(db)
        filled = time.perf_counter() - started
        results = {}
        for fmt in FORMATS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.export", "--one", db, str(dataset_id), fmt],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            results[fmt] = json.loads(out.stdout.strip().splitlines()[-1])
            print(fmt, results[fmt], flush=True)
    save(
        "export",
        {
            "rows": N_ROWS,
            "populate_seconds": round(filled, 1),
            "formats": results,
            "goal": ">= 100k rows/s for CSV and JSONL, >= 80k for Parquet; peak RSS < 300 MB",
        },
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    else:
        main()

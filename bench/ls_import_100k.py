"""ls_import at 100,000 items (the issue's "handles 100k items"): time, batches, and a re-run that
imports nothing; against a raw bulk POST of the same tasks in the same process."""

from __future__ import annotations

from bench._env import label_studio, postgres, save, timed
from bench.ls_sync import _dataset, _raw_import
from include.pipelines.catalog import ImportValues

N = 100_000


def main() -> None:
    from include.labelstudio.client import LabelStudioClient
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef

    with postgres("bench_100k") as db, label_studio() as (url, token):
        client = LabelStudioClient(url, token, timeout=900)
        dataset_id = _dataset(db, N)
        raw_s = _raw_import(client, N)
        platform_s, result = timed(lambda: run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id)))
        rerun_s, again = timed(lambda: run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id)))
        assert result["imported"] == N and again["imported"] == 0
        project_id = result["datasets"][0]["ls_project_id"]
        in_ls = int(client.get_project(project_id)["task_number"])
    save(
        "ls_import_100k",
        {
            "items": N,
            "raw_post_s": raw_s,
            "platform_s": platform_s,
            "ratio": platform_s / raw_s,
            "rerun_imports_nothing_s": rerun_s,
            "tasks_in_label_studio": in_ls,
        },
    )


if __name__ == "__main__":
    main()

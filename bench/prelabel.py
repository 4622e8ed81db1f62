"""Pre-labeling writes against Label Studio's own bulk import (real Label Studio 1.23.2, embedded PostgreSQL).

A dataset of ``--tasks`` items (default 100,000) is imported into one project and embedded with a
hashing embedder (the encoder is measured in bench/embeddings.py; here only the writes count).
Each round:

* **platform**: the ``prelabel`` job (similarity backend) writes a prediction for every task,
  with the time inside each Label Studio call (the per-chunk delete, the bulk create, the
  project update) recorded apart from the platform's own reads and bookkeeping;
* **raw**: a fresh project with the same tasks (not timed) gets exactly the payloads the job sent,
  POSTed to ``/import/predictions`` in the job's chunks, nothing else.

Each round is a new model version (the hashing embedder under a new name). The first writes into
a project without predictions; later ones write over the previous version's, and the platform's
rate counts until every new prediction is in Label Studio (Label Studio shows and samples only
the project's version from then on); pruning the superseded ones afterwards (Label Studio's slow
delete path, ~4.5 ms a prediction) is timed on its own. ``--prune-above N``: prune tasks holding
more than N predictions (the platform's default waits for 3; 1 measures pruning every round).
Order alternates between rounds. Goals: platform >= 0.8x the raw rate, >= 1,000 predictions/s.

``--legacy`` starts Label Studio without the platform's setting for its memory-efficient import
(``fflag_fix_back_4620_...``): the import path Label Studio Community uses by default, which
validates against every task id of the project and recounts every task after each chunk.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench._env import label_studio, postgres, save, setup_airflow_env


@dataclass
class HashEmbedder:
    """Unit vectors seeded by each text's hash: deterministic, free, 384-d."""

    name: str = "bench-hash-384"
    backend: str = "sentence_transformers"
    model: str = "bench-hash-384"
    dimension: int = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[row] = np.random.default_rng(seed).standard_normal(self.dimension)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class Timings:
    """Wall time spent inside each Label Studio call the job makes, and what it sent."""

    def __init__(self, client: Any) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.payloads: list[list[dict[str, Any]]] = []
        for name in ("delete_predictions", "import_predictions", "update_project"):
            setattr(client, name, self._wrap(name, getattr(client, name)))

    def _wrap(self, name: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if name == "import_predictions":
                self.payloads.append(list(args[1]))
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


def _dataset(db: str, n: int) -> int:
    from include.db.session import session_scope
    from include.services.datasets import add_items, create_dataset
    from include.services.privacy import SYNTHETIC

    tag = uuid.uuid4().hex[:8]
    with session_scope(db) as s:
        ds = create_dataset(s, f"prelabel-{tag}", labels=["positive", "negative"], privacy=SYNTHETIC)
        add_items(s, ds, ((f"note {tag} {i}: the unit works as described, mostly", {}) for i in range(n)))
        return ds.id


def _platform(db: str, client: Any, dataset_id: int, embedder: HashEmbedder) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines import prelabel
    from include.pipelines.catalog import PrelabelValues
    from include.pipelines.runner import RunRef
    from include.pipelines.training.embedding import embed_dataset

    embed_dataset(db, embedder, dataset_id)  # this round's "model": its vectors, not timed
    timings = Timings(client)
    pruning: dict[str, float] = {}
    real_prune = prelabel.prune_superseded

    def timed_prune(*args: Any, **kwargs: Any) -> int:
        pruning["ls_before"] = sum(timings.seconds.values())
        pruning["payloads"] = len(timings.payloads)
        pruning["started"] = time.perf_counter()
        try:
            return real_prune(*args, **kwargs)
        finally:
            pruning["seconds"] = time.perf_counter() - pruning["started"]

    prelabel.prune_superseded = timed_prune  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        result = prelabel.run_prelabel(
            db,
            client,
            RunRef(),
            load_settings(),
            PrelabelValues(dataset_id=dataset_id, backend="similarity", only_new=False),
            embedder=embedder,
        )
    finally:
        prelabel.prune_superseded = real_prune  # type: ignore[assignment]
        for name in ("delete_predictions", "import_predictions", "update_project"):  # undo the wrapping
            vars(client).pop(name, None)
    total = time.perf_counter() - started
    seconds = pruning.get("started", started + total) - started  # until every new prediction is in
    ls_seconds = pruning.get("ls_before", sum(timings.seconds.values()))
    return {
        "model_version": result["model_version"],
        "seconds": seconds,
        "predictions": result["ls_predictions"],
        "per_s": result["ls_predictions"] / seconds,
        "label_studio_s": dict(timings.seconds),
        "label_studio_calls": dict(timings.calls),
        "platform_own_s": seconds - ls_seconds,
        "prune_s": pruning.get("seconds", 0.0),
        "pruned_tasks": result["superseded_pruned"],
        "_payloads": timings.payloads[: int(pruning.get("payloads", len(timings.payloads)))],
    }


def _raw(client: Any, project_id: int, payloads: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The same payloads into a fresh project holding the same tasks (deleting the old predictions
    instead would cost Label Studio ~4.5 ms each), in the same chunks."""
    from include.labelstudio.label_config import build_label_config

    project = client.get_project(project_id)
    fresh = client.create_project(
        f"raw {uuid.uuid4().hex[:6]}", project.get("label_config") or build_label_config(["a"])
    )
    tasks = list(client.iter_tasks(project_id, fields="all"))
    for start in range(0, len(tasks), 5000):
        client.import_tasks(fresh["id"], [{"data": t["data"]} for t in tasks[start : start + 5000]])
    order = [int(t["id"]) for t in tasks]
    new_ids = dict(
        zip(
            order,
            (int(t["id"]) for t in client.iter_tasks(fresh["id"], fields="task_only", include=["id"])),
            strict=True,
        )
    )
    moved = [[p | {"task": new_ids[int(p["task"])]} for p in chunk] for chunk in payloads]
    started = time.perf_counter()
    created = sum(client.import_predictions(fresh["id"], chunk) for chunk in moved)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "predictions": created, "per_s": created / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prelabel")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--legacy", action="store_true", help="Label Studio's default (legacy) prediction import")
    parser.add_argument("--name", default="prelabel")
    parser.add_argument("--prune-above", type=int, default=None, help="default: the platform's PRUNE_ABOVE")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])  # python -m bench: defaults
    setup_airflow_env()
    if args.prune_above is not None:
        from include.services import predictions

        predictions.PRUNE_ABOVE = args.prune_above
    if args.legacy:
        from include.runtime import labelstudio_server

        labelstudio_server.PERFORMANCE_ENV.clear()

    from include.db.models import Dataset
    from include.db.session import session_scope
    from include.labelstudio.client import LabelStudioClient
    from include.pipelines.catalog import ImportValues
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef

    with postgres() as db, label_studio() as (url, token):
        client = LabelStudioClient(url, token, timeout=1200)
        dataset_id = _dataset(db, args.tasks)
        started = time.perf_counter()
        run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id, batch_size=5000))
        import_s = time.perf_counter() - started
        with session_scope(db) as s:
            project_id = int(s.get_one(Dataset, dataset_id).ls_project_id or 0)
        rounds = []
        for r in range(args.rounds):
            embedder = HashEmbedder(name=f"bench-hash-384-r{r}", model=f"bench-hash-384-r{r}")  # a new version
            order = "platform-first" if r % 2 == 0 else "raw-first"
            if order == "platform-first":
                platform = _platform(db, client, dataset_id, embedder)
                raw = _raw(client, project_id, platform["_payloads"])
            else:
                raw = _raw(client, project_id, rounds[-1]["platform"]["_payloads"])
                platform = _platform(db, client, dataset_id, embedder)
            rounds.append({"order": order, "over_an_older_version": r > 0, "platform": platform, "raw": raw})
            print(
                f"round {r}: platform {platform['per_s']:.0f}/s (LS {dict(platform['label_studio_s'])}, "
                f"own {platform['platform_own_s']:.1f} s, then pruned {platform['pruned_tasks']} tasks in "
                f"{platform['prune_s']:.1f} s), raw {raw['per_s']:.0f}/s",
                flush=True,
            )
        for row in rounds:
            row["platform"].pop("_payloads")
            row["ratio"] = row["platform"]["per_s"] / row["raw"]["per_s"]
    save(
        args.name,
        {
            "tasks": args.tasks,
            "label_studio_import": "legacy (Community default)" if args.legacy else "memory-efficient (LS setting)",
            "ls_import_s": import_s,
            "prune_above": args.prune_above,
            "rounds": rounds,
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "median_platform_per_s": statistics.median(r["platform"]["per_s"] for r in rounds),
            "goal": "ratio >= 0.8 and >= 1000 predictions/s",
        },
    )


if __name__ == "__main__":
    main()

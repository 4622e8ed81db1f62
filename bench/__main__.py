"""``python -m bench [name ...]``: run benchmarks (all by default); results go to bench/results/."""

from __future__ import annotations

import importlib
import sys

ALL = [
    "diverse_assign",
    "ls_sync",
    "ls_import_100k",
    "prelabel",
    "webapp_queries",
    "labeling",
    "embeddings",
    "embed_runtime",
    "embed_runtime_al",
    "scoring_training",
    "active_learning",
    "gate",
    "pii",
    "export",
    "inference",
    "ml_backend",
    "live_loop",
    "executors",
    "annotators",
    "load",
    "million",
]


def main(argv: list[str]) -> None:
    for name in argv or ALL:
        if name not in ALL:
            raise SystemExit(f"unknown benchmark {name!r}; one of {ALL}")
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Files that travel with a trained head: its held-out set, written next to its weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def holdout_path(artifact: Path) -> Path:
    return Path(artifact).with_suffix(".holdout.json")


def save_holdout(artifact: Path, hashes: list[str], labels: list[int]) -> None:
    """The validation split a candidate was chosen on, so the gate can score the incumbent on it."""
    holdout_path(artifact).write_text(json.dumps({"text_hashes": hashes, "labels": labels}))


def load_holdout(artifact: Path) -> tuple[list[str], np.ndarray]:
    data = json.loads(holdout_path(artifact).read_text())
    return list(data["text_hashes"]), np.asarray(data["labels"], dtype=np.int64)

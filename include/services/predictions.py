"""Write model predictions to Label Studio in bulk.

Label Studio's uncertainty sampling serves the LOWEST ``score`` first, and only among
predictions whose ``model_version`` equals the project's. So: ``score = confidence`` (never the
platform's priority number), the same ``model_version`` on every prediction, and the project's
``model_version`` set once they exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from include.labelstudio.client import LabelStudioClient
from include.labelstudio.label_config import choice_result

CHUNK = 1000


@dataclass(frozen=True)
class Prediction:
    ls_task_id: int
    label: str
    confidence: float


def push_predictions(
    client: LabelStudioClient,
    project_id: int,
    predictions: Sequence[Prediction],
    model_version: str,
    *,
    replace: bool = True,
    chunk: int = CHUNK,
) -> int:
    """Bulk-create predictions (replacing the tasks' earlier ones) and set the project's model version.

    Returns how many predictions Label Studio created.
    """
    created = 0
    for start in range(0, len(predictions), chunk):
        part = predictions[start : start + chunk]
        if replace:
            client.delete_predictions(project_id, [p.ls_task_id for p in part])
        created += client.import_predictions(
            project_id,
            [
                {
                    "task": p.ls_task_id,
                    "result": choice_result(p.label),
                    "score": round(float(p.confidence), 6),
                    "model_version": model_version,
                }
                for p in part
            ],
        )
    if created:
        client.update_project(project_id, model_version=model_version)
    return created

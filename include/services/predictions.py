"""Write model predictions to Label Studio in bulk.

Label Studio's uncertainty sampling serves the LOWEST ``score`` first, and only among
predictions whose ``model_version`` equals the project's. So: ``score = confidence`` (never the
platform's priority number), the same ``model_version`` on every prediction, and the project's
``model_version`` set once they exist.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

from include.labelstudio.client import LabelStudioClient
from include.labelstudio.label_config import choice_result

CHUNK = 1000
# A task is pruned once it holds more predictions than this (the current one and older versions
# Label Studio no longer shows or samples). Pruning deletes all of a task's predictions (~4.5 ms
# each) and writes the current one back, so waiting for a few versions costs about what deleting
# before every write did (~6 ms a task and version against ~5.2), while a new version's
# predictions reach Label Studio at bulk-create speed (~0.7 ms).
PRUNE_ABOVE = 3


@dataclass(frozen=True)
class Prediction:
    ls_task_id: int
    label: str
    confidence: float


def _payload(p: Prediction, model_version: str) -> dict[str, object]:
    return {
        "task": p.ls_task_id,
        "result": choice_result(p.label),
        "score": round(float(p.confidence), 6),
        "model_version": model_version,
    }


def push_predictions(
    client: LabelStudioClient,
    project_id: int,
    predictions: Sequence[Prediction],
    model_version: str,
    *,
    replace: bool | Collection[int] = True,
    set_version: bool = True,
    chunk: int = CHUNK,
) -> int:
    """Bulk-create predictions and set the project's model version; returns how many Label Studio created.

    ``replace``: True deletes every earlier prediction of the tasks first; a collection deletes
    only those of the Label Studio task ids in it (the tasks that already hold a prediction of
    this very version). Deleting is Label Studio's slow path (~4.5 ms a prediction: a signal
    recounts the task per row, against ~0.7 ms to create one), and Label Studio shows and samples
    only predictions of the project's model version, so predictions of older versions are left
    for :func:`prune_superseded` instead of blocking the new ones.
    """
    created = 0
    for start in range(0, len(predictions), chunk):
        part = predictions[start : start + chunk]
        doomed = [p.ls_task_id for p in part if replace is True or (replace and p.ls_task_id in replace)]
        if doomed:
            client.delete_predictions(project_id, doomed)
        created += client.import_predictions(project_id, [_payload(p, model_version) for p in part])
    if created and set_version:
        client.update_project(project_id, model_version=model_version)
    return created


def superseded_tasks(client: LabelStudioClient, project_id: int, above: int) -> Iterator[int]:
    """Label Studio ids of the project's tasks holding more than ``above`` predictions."""
    many = {"filter": "filter:tasks:total_predictions", "operator": "greater", "type": "Number", "value": above}
    for task in client.iter_tasks(project_id, filters=[many], fields="task_only", include=["id"]):
        yield int(task["id"])


def prune_superseded(
    client: LabelStudioClient,
    project_id: int,
    current: Callable[[list[int]], list[Prediction]],
    model_version: str,
    *,
    chunk: int = 500,
    above: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Leave each task holding more than ``above`` (default :data:`PRUNE_ABOVE`) predictions with
    its current one only; returns the tasks pruned.

    Label Studio deletes only all of a task's predictions at once, so per chunk of such tasks:
    delete them all, then write back ``current(ls_task_ids)`` (the shadow index's
    prediction of each by ``model_version``; a task whose shadow pre-label is of another version
    keeps none). A chunk's tasks are without a
    prediction for the second that takes; killed half-way, the next run finds the rest.
    """
    pruned = 0
    pending: list[int] = []

    def flush() -> None:
        nonlocal pruned
        client.delete_predictions(project_id, pending)
        keep = current(list(pending))
        if keep:
            client.import_predictions(project_id, [_payload(p, model_version) for p in keep])
        pruned += len(pending)
        pending.clear()
        if progress is not None:
            progress(pruned)

    for ls_id in list(superseded_tasks(client, project_id, PRUNE_ABOVE if above is None else above)):
        pending.append(ls_id)
        if len(pending) == chunk:
            flush()
    if pending:
        flush()
    return pruned

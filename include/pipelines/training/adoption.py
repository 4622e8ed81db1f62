"""A model an earlier try of the same task already committed.

A worker killed after the work committed but before Airflow heard of the success leaves its
experiment finished and its candidate registered: the retry must hand that model to the gate,
not train again and not skip as "no new labels" (the gate would then never judge it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from include.ml.training.params import TrainParams
from include.pipelines.runner import JobHandle, RunRef
from include.services.experiments import finished_by_earlier_try


def adopt_earlier_try(
    session: Session,
    job: JobHandle,
    run: RunRef,
    *,
    dataset_id: int,
    snapshot: str,
    params: TrainParams,
    extra: dict[str, Any] | None = None,
    **result: Any,
) -> dict[str, Any] | None:
    """End the step with the model an earlier try of this run committed on the same labels and
    parameters; None when there is none (the step trains). ``result`` joins the step's result."""
    earlier = finished_by_earlier_try(
        session, dataset_id=dataset_id, run_id=run.run_id, snapshot=snapshot, params=params, extra=extra
    )
    if earlier is None:
        return None
    experiment, model = earlier
    job.done(f"{model.version} was trained by an earlier try of this run (experiment {experiment.id}): kept")
    job.result = {
        "model_id": model.id,
        "version": model.version,
        "metrics": model.metrics,
        "device": experiment.device,
        "experiment_id": experiment.id,
        **result,
    }
    return job.result

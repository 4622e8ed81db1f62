"""API: datasets, their statistics, priority list, auto-assignment and settings."""

from __future__ import annotations

from typing import Any

from flask import current_app

from include.demo.texts import generate_demo_texts
from include.services import dataset_settings, datasets, eval_set, flags, guidelines, live_loop
from include.services.assignment import AutoAssignRequest, OverlapSettings, apply_overlap, auto_assign_request
from include.services.dataset_settings import DatasetSettings
from include.services.eval_set import EvalPolicy
from include.services.evaluations import learning_curve
from include.services.live_loop import LiveLoopUpdate
from include.services.paging import PageQuery
from include.services.stats import dataset_stats, per_annotator_stats
from include.services.task_queries import PriorityQuery, priority_page
from webapp.api import PartialBody, api_user, paged, route
from webapp.clients import pii_key
from webapp.extensions import db
from webapp.guidelines import save_guidelines
from webapp.serializers import dataset_json, eval_set_json, flag_json, guidelines_json, live_loop_json, task_json

TAG = "datasets"


@route("GET", "/datasets", tag=TAG, query=PageQuery, response="Dataset", listing="datasets")
def list_datasets(query: PageQuery) -> dict[str, Any]:
    """Every dataset, by id."""
    return paged("datasets", datasets.dataset_page(db.session(), query), dataset_json)


@route("POST", "/datasets", tag=TAG, body=datasets.NewDataset, status=201, response="NewDataset")
def create(body: datasets.NewDataset) -> dict[str, Any]:
    """Create a dataset; ``{"name": ..., "demo": 100}`` fills it with generated demo texts.

    ``labels`` defaults to the LABELS setting; ``label_descriptions`` maps labels to their meaning.
    """
    rows = [(t.text, {"demo": True}) for t in generate_demo_texts(body.demo)] if body.demo else []
    dataset, report = datasets.create_with_items(
        db.session(), body, rows, default_labels=current_app.config["DEFAULT_LABELS"], created_by=api_user(),
        key=pii_key(),
    )  # fmt: skip
    db.session.commit()
    return {"dataset": dataset_json(dataset), "items_added": report.added}


@route("GET", "/datasets/<id:dataset_id>", tag=TAG, response="Dataset", errors=(404,))
def get_dataset(dataset_id: int) -> dict[str, Any]:
    """One dataset."""
    return dataset_json(datasets.get_dataset(db.session(), dataset_id))


@route("GET", "/datasets/<id:dataset_id>/stats", tag=TAG, response="DatasetStats", errors=(404,))
def stats(dataset_id: int) -> dict[str, Any]:
    """Totals (items, imported, assigned, labeled, per label, conflicts) and per annotator."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    return {
        "dataset_id": dataset_id,
        **dataset_stats(db.session(), dataset),
        "annotators": per_annotator_stats(db.session(), dataset_id),
    }


@route(
    "GET", "/datasets/<id:dataset_id>/priority_tasks", tag=TAG, query=PriorityQuery, response="Task",
    listing="tasks", errors=(404,),
)  # fmt: skip
def priority(dataset_id: int, query: PriorityQuery) -> dict[str, Any]:
    """Highest-priority (most uncertain) tasks first."""
    datasets.get_dataset(db.session(), dataset_id)
    return paged("tasks", priority_page(db.session(), dataset_id, query), task_json)


@route(
    "POST", "/datasets/<id:dataset_id>/auto_assign", tag=TAG, body=AutoAssignRequest, body_from_query=True,
    response="Assigned", errors=(404,),
)  # fmt: skip
def auto_assign(dataset_id: int, body: AutoAssignRequest) -> dict[str, Any]:
    """Assign ``count`` unassigned tasks to ``username``, hardest first (``strategy`` diverse or top).

    The fields may also come in the query string (``?username=alice&count=20``).
    """
    ids = auto_assign_request(db.session(), datasets.get_dataset(db.session(), dataset_id), body)
    db.session.commit()
    return {"assigned": len(ids), "task_ids": ids, "username": body.username}


@route("GET", "/datasets/<id:dataset_id>/settings", tag=TAG, response="DatasetSettings", errors=(404,))
def get_settings(dataset_id: int) -> dict[str, Any]:
    """Every setting of the dataset (overlap, live loop, retune, evaluation policy, quality thresholds)."""
    return dataset_settings.current(datasets.get_dataset(db.session(), dataset_id)).as_params()


@route(
    "PUT", "/datasets/<id:dataset_id>/settings", tag=TAG, body=DatasetSettings, partial=True,
    response="DatasetSettings", errors=(404,),
)  # fmt: skip
def put_settings(dataset_id: int, body: PartialBody[DatasetSettings]) -> dict[str, Any]:
    """Change any of the dataset's settings; fields not sent keep their values."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    values = body.over(dataset_settings.current(dataset))
    dataset_settings.apply(db.session(), dataset, values, changed=body.given)
    db.session.commit()
    return values.as_params()


@route(
    "PUT", "/datasets/<id:dataset_id>/overlap", tag=TAG, body=OverlapSettings, response="Overlap", errors=(404,)
)  # fmt: skip
def overlap(dataset_id: int, body: OverlapSettings) -> dict[str, Any]:
    """``{"overlap_share": 0.1}``: that share of each auto-assignment also goes to a second annotator."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    apply_overlap(db.session(), dataset, body)
    db.session.commit()
    return {"dataset_id": dataset_id, "overlap_share": dataset.overlap_share}


@route("GET", "/datasets/<id:dataset_id>/live-loop", tag=TAG, response="LiveLoop", errors=(404,))
def live_loop_status(dataset_id: int) -> dict[str, Any]:
    """The live loop's setting and state: new labels since the last model, webhooks waiting."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    return live_loop_json(dataset_id, live_loop.status(db.session(), dataset))


@route(
    "PUT", "/datasets/<id:dataset_id>/live-loop", tag=TAG, body=LiveLoopUpdate, partial=True, response="LiveLoop",
    errors=(404,),
)  # fmt: skip
def live_loop_update(dataset_id: int, body: PartialBody[LiveLoopUpdate]) -> dict[str, Any]:
    """``{"retrain_after_labels": 50}`` (null: off) and/or ``{"retune_at_labels": 120}`` (0: never;
    null: automatic, on GPU workers only)."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    live_loop.apply_update(db.session(), dataset, body.over(LiveLoopUpdate.from_object(dataset)))
    db.session.commit()
    return live_loop_json(dataset_id, live_loop.status(db.session(), dataset))


@route("GET", "/datasets/<id:dataset_id>/eval_set", tag=TAG, response="EvalSet", errors=(404,))
def get_eval_set(dataset_id: int) -> dict[str, Any]:
    """The evaluation set: its policy, version and size per label."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    return eval_set_json(dataset, eval_set.current_set(db.session(), dataset))


@route(
    "PUT", "/datasets/<id:dataset_id>/eval_set", tag=TAG, body=EvalPolicy, partial=True, response="EvalSet",
    errors=(404,),
)  # fmt: skip
def put_eval_set(dataset_id: int, body: PartialBody[EvalPolicy]) -> dict[str, Any]:
    """Change the policy: ``{"eval_fraction": 0.2, "eval_min_per_label": 10, "eval_cap": 1000}``."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    current = eval_set.set_policy(db.session(), dataset, body.over(EvalPolicy.from_object(dataset)))
    db.session.commit()
    return eval_set_json(dataset, current)


@route("GET", "/datasets/<id:dataset_id>/learning_curve", tag=TAG, response="LearningCurve", errors=(404,))
def learning(dataset_id: int) -> dict[str, Any]:
    """Eval-set macro F1 of each model version against the labels it was trained on."""
    datasets.get_dataset(db.session(), dataset_id)
    return {"dataset_id": dataset_id, "points": learning_curve(db.session(), dataset_id)}


@route("GET", "/datasets/<id:dataset_id>/guidelines", tag=TAG, response="Guidelines", errors=(404,))
def get_guidelines(dataset_id: int) -> dict[str, Any]:
    """The dataset's guidelines (Markdown and rendered), label descriptions and versions."""
    return guidelines_json(db.session(), datasets.get_dataset(db.session(), dataset_id))


@route(
    "PUT", "/datasets/<id:dataset_id>/guidelines", tag=TAG, body=guidelines.Guidelines, response="Guidelines",
    errors=(404,),
)  # fmt: skip
def put_guidelines(dataset_id: int, body: guidelines.Guidelines) -> dict[str, Any]:
    """Save the guidelines (and label descriptions; omitted: kept) as a new version when they
    changed. Label Studio's project shows them as its instruction; LLM prompts read them."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    save_guidelines(dataset, body, api_user())
    return guidelines_json(db.session(), dataset)


@route("GET", "/datasets/<id:dataset_id>/flags", tag=TAG, response="Flags", errors=(404,))
def list_flags(dataset_id: int) -> dict[str, Any]:
    """Open skips, "not sure" answers and flags of the dataset, newest first, with counts by kind."""
    datasets.get_dataset(db.session(), dataset_id)
    return {
        "dataset_id": dataset_id,
        "counts": flags.counts(db.session(), dataset_id),
        "flags": [flag_json(f, who) for f, who in flags.open_flags(db.session(), dataset_id)],
    }


@route(
    "POST", "/datasets/<id:dataset_id>/flags/<bigid:flag_id>/resolve", tag=TAG, response="FlagEnvelope",
    errors=(404,),
)  # fmt: skip
def resolve_flag(dataset_id: int, flag_id: int) -> dict[str, Any]:
    """Close an open flag: its task can be assigned again (never to an annotator who skipped it)."""
    resolved = flags.resolve(db.session(), dataset_id, flag_id, api_user())
    db.session.commit()
    return {"flag": flag_json(resolved)}

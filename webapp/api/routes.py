"""JSON API routes (``/api/v1``)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request

from include.airflow_client import AirflowError
from include.db.models import Dataset, Experiment, Job, JobStatus, ModelVersion, Role, Task
from include.demo.texts import generate_demo_texts
from include.ml.batch import BATCH_STRATEGY
from include.params import ParamError, parse_int
from include.pipelines.catalog import PIPELINES, Pipeline
from include.services import eval_set, evaluations
from include.services.assignment import AssignmentError, assign_task, auto_assign, may_label, unassign_task
from include.services.datasets import DatasetError, add_items, create_dataset, list_datasets
from include.services.eval_set import EVAL_POLICY, EvalSetError
from include.services.evaluations import learning_curve
from include.services.experiments import ExperimentNotRunning, progress_message
from include.services.jobs import attempts_of, recent_jobs
from include.services.label_outbox import summary as outbox_summary
from include.services.labeling import LabelingError, submit_label
from include.services.registry import registry_rows
from include.services.stats import annotator_stats, dataset_stats, per_annotator_stats
from include.services.task_queries import annotator_tasks, parse_status, priority_tasks
from include.services.users import authenticate, find_user
from webapp.api import api_error, api_user, bp, json_body, token_required
from webapp.args import int_arg, page_arg
from webapp.auth import throttle
from webapp.clients import NotConfigured, wake_dispatcher
from webapp.extensions import db
from webapp.runs import refresh_active_jobs, stop_experiment, trigger_pipeline
from webapp.security import make_api_token
from webapp.serializers import dataset_json, experiment_json, job_json, model_json, task_json


def _dataset_or_error(dataset_id: int) -> Dataset | Any:
    dataset = db.session.get(Dataset, dataset_id)
    return dataset if dataset is not None else api_error(404, f"dataset {dataset_id} not found")


# -- auth ------------------------------------------------------------------------------------
@bp.post("/auth/login")
def login() -> Any:
    """Exchange username and password for a bearer token."""
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return api_error(400, 'send JSON {"username": ..., "password": ...}')
    refused = throttle.refusal(username)
    if refused is not None:
        response = api_error(429, f"{refused.reason}; try again in {refused.retry_after} s")
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    user = authenticate(db.session(), username, password)
    if user is None:
        return api_error(401, "wrong username or password")
    return throttle.succeeded(
        username,
        jsonify(
            {
                "access_token": make_api_token(user),
                "token_type": "bearer",
                "role": user.role.value,
                "expires_in": current_app.config["API_TOKEN_MAX_AGE"],
            }
        ),
    )


@bp.get("/me")
@token_required()
def me() -> Any:
    user = api_user()
    return jsonify({"id": user.id, "username": user.username, "email": user.email, "role": user.role.value})


# -- datasets --------------------------------------------------------------------------------
@bp.get("/datasets")
@token_required(Role.ADMIN)
def datasets() -> Any:
    rows = sorted(list_datasets(db.session()), key=lambda d: d.id)
    return jsonify({"datasets": [dataset_json(d) for d in rows]})


@bp.post("/datasets")
@token_required(Role.ADMIN)
def create() -> Any:
    """Create a dataset; ``{"name": ..., "demo": 100}`` fills it with generated demo texts.

    ``labels`` defaults to the LABELS setting; ``label_descriptions`` maps labels to their meaning.
    """
    body = json_body()
    demo = body.get("demo", 0)
    if not isinstance(demo, int) or isinstance(demo, bool) or not 0 <= demo <= 5000:
        return api_error(400, "demo must be a number of texts between 0 and 5000")
    for key in ("name", "description"):
        if not isinstance(body.get(key, ""), str):
            return api_error(400, f"{key} must be text")
    try:
        dataset = create_dataset(
            db.session(),
            body.get("name", ""),
            labels=body.get("labels") or current_app.config["DEFAULT_LABELS"],
            description=body.get("description", ""),
            label_descriptions=body.get("label_descriptions"),
            created_by=api_user(),
        )
        report = (
            add_items(db.session(), dataset, [(t.text, {"demo": True}) for t in generate_demo_texts(demo)])
            if demo
            else None
        )
        db.session.commit()
    except DatasetError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"dataset": dataset_json(dataset), "items_added": report.added if report else 0}), 201


@bp.get("/datasets/<id:dataset_id>/stats")
@token_required(Role.ADMIN)
def stats(dataset_id: int) -> Any:
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    return jsonify(
        {
            "dataset_id": dataset_id,
            **dataset_stats(db.session(), dataset),
            "annotators": per_annotator_stats(db.session(), dataset_id),
        }
    )


@bp.get("/datasets/<id:dataset_id>/priority_tasks")
@token_required(Role.ADMIN)
def priority(dataset_id: int) -> Any:
    """Highest-priority (most uncertain) tasks first."""
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    only_unlabeled = request.args.get("only_unlabeled", "true").lower() not in ("0", "false", "no")
    rows = priority_tasks(
        db.session(), dataset_id, limit=int_arg("limit", 50, maximum=1000) or 50, only_unlabeled=only_unlabeled
    )
    return jsonify({"tasks": [task_json(t) for t in rows]})


@bp.post("/datasets/<id:dataset_id>/auto_assign")
@token_required(Role.ADMIN)
def auto_assign_api(dataset_id: int) -> Any:
    """Assign ``count`` unassigned tasks to ``username``, hardest first (``strategy`` diverse or top)."""
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    body = json_body()
    username = request.args.get("username") or body.get("username") or ""
    try:
        count = parse_int(request.args.get("count") or body.get("count") or 0, what="count", minimum=0)
        ids = auto_assign(
            db.session(),
            dataset_id,
            find_user(db.session(), str(username)),
            count,
            overlap_share=dataset.overlap_share,
            strategy=str(request.args.get("strategy") or body.get("strategy") or BATCH_STRATEGY.default),
        )
        db.session.commit()
    except (ParamError, AssignmentError) as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"assigned": len(ids), "task_ids": ids, "username": username})


# -- tasks -----------------------------------------------------------------------------------
@bp.post("/tasks/<bigid:task_id>/assign/<username>")
@token_required(Role.ADMIN)
def assign(task_id: int, username: str) -> Any:
    try:
        task = assign_task(db.session(), task_id, find_user(db.session(), username))
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return api_error(404 if "does not exist" in str(exc) else 400, str(exc))
    return jsonify({"task": task_json(task)})


@bp.post("/tasks/<bigid:task_id>/unassign")
@token_required(Role.ADMIN)
def unassign(task_id: int) -> Any:
    try:
        task = unassign_task(db.session(), task_id)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return api_error(404 if "does not exist" in str(exc) else 400, str(exc))
    return jsonify({"task": task_json(task)})


# -- annotator -------------------------------------------------------------------------------
@bp.get("/annotator/tasks")
@token_required(Role.ANNOTATOR)
def my_tasks() -> Any:
    """My tasks (priority desc); filters: dataset_id, status, limit, page."""
    try:
        status = parse_status(request.args.get("status"))
    except ValueError as exc:
        return api_error(400, str(exc))
    page = annotator_tasks(
        db.session(),
        api_user(),
        status=status,
        dataset_id=int_arg("dataset_id"),
        page=page_arg(),
        per_page=int_arg("limit", 50, maximum=200) or 50,
    )
    return jsonify({"tasks": [task_json(t) for t in page.items], "page": page.page, "has_next": page.has_next})


@bp.get("/annotator/stats")
@token_required(Role.ANNOTATOR)
def my_stats() -> Any:
    return jsonify(annotator_stats(db.session(), api_user(), int_arg("dataset_id")))


@bp.post("/annotator/tasks/<bigid:task_id>/label")
@token_required(Role.ANNOTATOR)
def label(task_id: int) -> Any:
    """Label one of my tasks: ``{"label": "<one of the dataset's labels>"}``.

    Saved at once; Label Studio gets it through the outbox (``waiting`` says how many of my
    labels have not reached it yet). Sending the same label again changes nothing.
    """
    task = db.session.get(Task, task_id)
    if task is None or not may_label(db.session(), task, api_user()):
        return api_error(404, "task not found")
    choice = json_body().get("label")
    if not isinstance(choice, str):
        return api_error(400, 'send JSON {"label": ...}')
    try:
        task = submit_label(db.session(), task_id, api_user(), choice)
        db.session.commit()
    except LabelingError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    wake_dispatcher()
    return jsonify({"task": task_json(task)})


@bp.get("/annotator/outbox")
@token_required(Role.ANNOTATOR)
def my_outbox() -> Any:
    """How many of my labels are still on their way to Label Studio."""
    return jsonify(_outbox_json(outbox_summary(db.session(), user_id=api_user().id)))


@bp.get("/outbox")
@token_required(Role.ADMIN)
def outbox() -> Any:
    """Labels on their way to Label Studio, everyone's."""
    return jsonify(_outbox_json(outbox_summary(db.session())))


def _outbox_json(summary: Any) -> dict[str, Any]:
    return {
        "waiting": summary.waiting,
        "failing": summary.failing,
        "undeliverable": summary.dead,
        "oldest_waiting_at": summary.oldest_waiting_at.isoformat() if summary.oldest_waiting_at else None,
        "last_error": summary.last_error,
    }


# -- pipelines and jobs ----------------------------------------------------------------------
def _trigger(pipeline: Pipeline, body: dict[str, Any]) -> Any:
    """Validate ``body`` against the pipeline's declared parameters and start a run."""
    try:
        conf = pipeline.build_conf(body)
    except ParamError as exc:
        return api_error(400, str(exc))
    dataset_id = conf.get("dataset_id")
    if dataset_id is not None and db.session.get(Dataset, dataset_id) is None:
        return api_error(404, f"dataset {dataset_id} not found")
    try:
        job = trigger_pipeline(pipeline, conf, api_user())
    except (AirflowError, NotConfigured) as exc:
        return api_error(503, str(exc))
    return jsonify({"job_id": job.id, "job": job_json(job)}), 202


@bp.post("/pipelines/<name>")
@token_required(Role.ADMIN)
def run_pipeline(name: str) -> Any:
    """Trigger a pipeline: ``{"dataset_id": 1, ...params}``; returns the queued job."""
    pipeline = PIPELINES.get(name)
    if pipeline is None:
        return api_error(404, f"unknown pipeline {name!r}; one of {sorted(PIPELINES)}")
    return _trigger(pipeline, json_body())


@bp.get("/pipelines")
@token_required(Role.ADMIN)
def list_pipelines() -> Any:
    """Every pipeline with its parameters (type, default, bounds, choices, help)."""
    return jsonify(
        {
            "pipelines": [
                {
                    "name": p.name,
                    "title": p.title,
                    "description": p.description,
                    "params": [
                        {"name": s.name, "label": s.label, "help": s.help, "default": s.default, **s.json_schema()}
                        for s in p.params
                    ],
                }
                for p in PIPELINES.values()
            ]
        }
    )


@bp.post("/datasets/<id:dataset_id>/import_to_ls")
@token_required(Role.ADMIN)
def import_to_ls(dataset_id: int) -> Any:
    """The seed's endpoint: trigger ls_import for a dataset."""
    return _trigger(PIPELINES["ls_import"], {**json_body(), "dataset_id": dataset_id})


@bp.post("/datasets/<id:dataset_id>/export_from_ls")
@token_required(Role.ADMIN)
def export_from_ls(dataset_id: int) -> Any:
    """The seed's endpoint: trigger ls_export for a dataset."""
    return _trigger(PIPELINES["ls_export"], {**json_body(), "dataset_id": dataset_id})


@bp.get("/jobs")
@token_required(Role.ADMIN)
def jobs() -> Any:
    refresh_active_jobs()
    rows = recent_jobs(db.session(), int_arg("limit", 50, maximum=500) or 50, dataset_id=int_arg("dataset_id"))
    tries = attempts_of(db.session(), [j.id for j in rows])
    return jsonify({"jobs": [job_json(j, tries.get(j.id)) for j in rows]})


@bp.get("/jobs/<id:job_id>")
@token_required(Role.ADMIN)
def job(job_id: int) -> Any:
    row = db.session.get(Job, job_id)
    if row is None:
        return api_error(404, f"job {job_id} not found")
    if row.status in (JobStatus.QUEUED, JobStatus.RUNNING):  # a multi-step run's row ends with its Airflow run
        refresh_active_jobs()
        db.session.refresh(row)
    return jsonify(job_json(row, attempts_of(db.session(), [row.id]).get(row.id)))


# -- models and evaluation --------------------------------------------------------------------
@bp.get("/models")
@token_required(Role.ADMIN)
def models() -> Any:
    """The model registry, newest first (``?dataset_id=`` to filter)."""
    dataset_id = int_arg("dataset_id")
    rows = [m for m, _, _ in registry_rows(db.session()) if dataset_id is None or m.dataset_id == dataset_id]
    return jsonify({"models": [model_json(m) for m in rows]})


@bp.get("/models/<id:model_id>")
@token_required(Role.ADMIN)
def model(model_id: int) -> Any:
    row = db.session.get(ModelVersion, model_id)
    if row is None:
        return api_error(404, f"model {model_id} not found")
    return jsonify(model_json(row))


@bp.get("/models/<id:model_id>/report")
@token_required(Role.ADMIN)
def model_report(model_id: int) -> Any:
    """The model's latest evaluation report (confusion, per-label figures, curves, mistakes)."""
    evaluation = evaluations.latest(db.session(), model_id)
    if evaluation is None:
        return api_error(404, f"model {model_id} has no evaluation report yet")
    report = {k: v for k, v in evaluation.report.items() if k != "predictions"}
    return jsonify({"model_id": model_id, "eval_version": evaluation.eval_version, "report": report})


@bp.get("/datasets/<id:dataset_id>/eval_set")
@token_required(Role.ADMIN)
def get_eval_set(dataset_id: int) -> Any:
    """The evaluation set: its policy, version and size per label."""
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    return jsonify(_eval_json(dataset, eval_set.current_set(db.session(), dataset)))


@bp.put("/datasets/<id:dataset_id>/eval_set")
@token_required(Role.ADMIN)
def put_eval_set(dataset_id: int) -> Any:
    """Change the policy: ``{"eval_fraction": 0.2, "eval_min_per_label": 10, "eval_cap": 1000}``."""
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    body = json_body()
    unknown = sorted(set(body) - {spec.name for spec in EVAL_POLICY})
    if unknown:
        return api_error(400, f"unknown policy field {unknown[0]!r}")
    try:
        values = {spec.name: spec.parse(body.get(spec.name, getattr(dataset, spec.name))) for spec in EVAL_POLICY}
        eval_set.set_policy(
            db.session(), dataset, values["eval_fraction"], values["eval_min_per_label"], values["eval_cap"]
        )
        current = eval_set.refresh(db.session(), dataset)
        db.session.commit()
    except ParamError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify(_eval_json(dataset, current))


@bp.post("/tasks/<bigid:task_id>/eval")
@token_required(Role.ADMIN)
def task_eval(task_id: int) -> Any:
    """Add a labeled task to the evaluation set (``{"member": true}``) or drop it (``false``)."""
    task = db.session.get(Task, task_id)
    if task is None:
        return api_error(404, f"task {task_id} not found")
    member = json_body().get("member")
    if not isinstance(member, bool):
        return api_error(400, 'send JSON {"member": true} or {"member": false}')
    dataset = db.session.get(Dataset, task.dataset_id)
    try:
        message = eval_set.set_membership(db.session(), dataset, task_id, member, api_user().id)  # type: ignore[arg-type]
        db.session.commit()
    except EvalSetError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"message": message, **_eval_json(dataset, eval_set.current_set(db.session(), dataset))})  # type: ignore[arg-type]


@bp.get("/datasets/<id:dataset_id>/learning_curve")
@token_required(Role.ADMIN)
def learning(dataset_id: int) -> Any:
    """Eval-set macro F1 of each model version against the labels it was trained on."""
    dataset = _dataset_or_error(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    return jsonify({"dataset_id": dataset_id, "points": learning_curve(db.session(), dataset_id)})


def _eval_json(dataset: Dataset, current: Any) -> dict[str, Any]:
    return {
        "dataset_id": dataset.id,
        "policy": {spec.name: getattr(dataset, spec.name) for spec in EVAL_POLICY},
        "version": current.version,
        "size": current.size,
        "per_label": current.per_label,
        "dropped": current.excluded,
    }


# -- experiments -----------------------------------------------------------------------------
@bp.get("/experiments/<id:experiment_id>")
@token_required(Role.ADMIN)
def experiment_api(experiment_id: int) -> Any:
    """A training run with its epochs so far (poll it to follow a run live)."""
    run = db.session.get(Experiment, experiment_id)
    if run is None:
        return api_error(404, f"experiment {experiment_id} not found")
    return jsonify({"experiment": experiment_json(run, progress_message(db.session(), run))})


@bp.post("/experiments/<id:experiment_id>/stop")
@token_required(Role.ADMIN)
def stop_experiment_api(experiment_id: int) -> Any:
    """Stop a running training: the partial experiment is kept and marked stopped (409 if not running)."""
    try:
        message = stop_experiment(experiment_id, api_user())
    except ExperimentNotRunning as exc:
        db.session.rollback()
        return api_error(404 if "does not exist" in str(exc) else 409, str(exc))
    run = db.session.get_one(Experiment, experiment_id)
    return jsonify({"experiment": experiment_json(run), "message": message})

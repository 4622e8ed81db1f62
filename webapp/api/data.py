"""JSON API for data in and out: de-identification policies and the seed's ``deidentify:test``,
reveals, the quality gate, overlap and agreement, exports, snapshots, batch inference and
training configs."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from include.airflow_client import AirflowError
from include.db.models import Dataset, InferenceRun, Role
from include.ml.training.configs import ConfigError
from include.params import ParamError
from include.services import inference, live_loop, pii, quality, retune, snapshots, training_configs
from include.services.datasets import DatasetError
from webapp.api import api_error, api_user, bp, json_body, token_required
from webapp.clients import NotConfigured
from webapp.downloads import DownloadRefused, export_response, inference_response, pii_key, pii_llm
from webapp.extensions import db
from webapp.runs import start_inference_run as start_run
from webapp.serializers import (
    inference_json,
    job_json,
    live_loop_json,
    policy_json,
    quality_json,
    snapshot_json,
    training_config_json,
)


def _dataset(dataset_id: int) -> Dataset | Any:
    dataset = db.session.get(Dataset, dataset_id)
    return dataset if dataset is not None else api_error(404, f"dataset {dataset_id} not found")


# -- de-identification -------------------------------------------------------------------------
@bp.get("/pii/policies")
@token_required(Role.ADMIN)
def pii_policies() -> Any:
    return jsonify({"policies": [policy_json(p) for p in pii.list_policies(db.session())]})


@bp.post("/pii/policies")
@token_required(Role.ADMIN)
def create_pii_policy() -> Any:
    """``{"name": ..., "entities": {"PHONE": "placeholder", ...}, "locale": "auto", "use_llm": false}``."""
    return _save_policy(None)


@bp.put("/pii/policies/<id:policy_id>")
@token_required(Role.ADMIN)
def update_pii_policy(policy_id: int) -> Any:
    """Change a policy; its version goes up and its datasets are de-identified again."""
    return _save_policy(policy_id)


def _save_policy(policy_id: int | None) -> Any:
    body = json_body()
    use_llm = body.get("use_llm", False)
    if not isinstance(use_llm, bool):
        return api_error(400, "use_llm must be true or false")
    name = body.get("name")
    try:
        policy = pii.save_policy(
            db.session(),
            name if isinstance(name, str) else "",
            body.get("entities"),
            locale=str(body.get("locale") or "auto"),
            use_llm=use_llm,
            policy_id=policy_id,
        )
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        return api_error(404 if "no de-identification policy" in str(exc) else 400, str(exc))
    return jsonify({"policy": policy_json(policy)}), 201 if policy_id is None else 200


@bp.put("/datasets/<id:dataset_id>/pii_policy")
@token_required(Role.ADMIN)
def set_pii_policy(dataset_id: int) -> Any:
    """``{"policy_id": 3}`` (or null): from now on the dataset's texts are de-identified before use."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    raw = json_body().get("policy_id", "missing")
    if raw == "missing" or not (raw is None or (isinstance(raw, int) and not isinstance(raw, bool))):
        return api_error(400, 'send JSON {"policy_id": <id>} or {"policy_id": null}')
    try:
        pending = pii.attach(db.session(), dataset, raw)
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"dataset_id": dataset_id, "policy_id": raw, "pending": pending})


@bp.post("/deidentify:test")
@token_required()
def deidentify_test() -> Any:
    """Seed 003's contract: ``{policy_id, text: [...], options: {locale, format, return_mapping, seed}}``
    -> ``{deidentified: [...], policy_version, mapping}``; the mapping only for admins who ask."""
    user = api_user()
    try:
        policy_id, texts, options = pii.parse_test_request(json_body())
        if options.return_mapping and not user.is_admin:
            return api_error(403, "only admins may see the mapping to original personal data")
        policy = pii.get_policy(db.session(), policy_id) if policy_id is not None else None
        result = pii.try_policy(
            db.session(),
            policy_id,
            texts,
            options,
            key=pii_key(),
            with_mapping=options.return_mapping,
            llm_recognizer=pii_llm(bool(policy and policy.use_llm)),
        )
    except pii.PolicyError as exc:
        return api_error(404 if "no de-identification policy" in str(exc) else 400, str(exc))
    return jsonify(result)


@bp.post("/items/<bigid:item_id>/reveal")
@token_required()
def reveal_item(item_id: int) -> Any:
    """An item's original text (admins only; every reveal is audited)."""
    user = api_user()
    if not user.is_admin:
        return api_error(403, "only admins can see original personal data")
    try:
        key = pii.key_of(_config_key())
        shown = pii.reveal(db.session(), item_id, user, key)
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        return api_error(404 if "has no de-identification mapping" in str(exc) else 503, str(exc))
    return jsonify(shown)


def _config_key() -> str | None:
    from flask import current_app

    return current_app.config.get("PII_KEY")


# -- quality gate, overlap and agreement --------------------------------------------------------
@bp.get("/datasets/<id:dataset_id>/quality")
@token_required(Role.ADMIN)
def quality_report(dataset_id: int) -> Any:
    """The latest quality report (pass/fail per check with examples) and the thresholds."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    report = quality.latest(db.session(), dataset_id)
    return jsonify(
        {
            "dataset_id": dataset_id,
            "thresholds": quality.thresholds_of(dataset),
            "report": quality_json(report) if report else None,
        }
    )


@bp.put("/datasets/<id:dataset_id>/quality/thresholds")
@token_required(Role.ADMIN)
def quality_thresholds(dataset_id: int) -> Any:
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    body = json_body()
    unknown = sorted(set(body) - {spec.name for spec in quality.THRESHOLDS})
    if unknown:
        return api_error(400, f"unknown threshold {unknown[0]!r}")
    try:
        values = quality.set_thresholds(db.session(), dataset, body)
        db.session.commit()
    except ParamError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"dataset_id": dataset_id, "thresholds": values})


@bp.post("/datasets/<id:dataset_id>/quality/override")
@token_required(Role.ADMIN)
def quality_override(dataset_id: int) -> Any:
    """``{"reason": "..."}``: let import and training go ahead despite the failed report."""
    report = quality.latest(db.session(), dataset_id)
    if report is None:
        return api_error(404, f"dataset {dataset_id} has no quality report: run quality_check first")
    reason = json_body().get("reason")
    try:
        quality.override(db.session(), report, api_user(), reason if isinstance(reason, str) else "")
        db.session.commit()
    except ValueError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"report": quality_json(report)})


@bp.get("/datasets/<id:dataset_id>/agreement")
@token_required(Role.ADMIN)
def agreement(dataset_id: int) -> Any:
    """Cohen's kappa per annotator pair, Fleiss' kappa, and each annotator against the final label."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    return jsonify(
        {"dataset_id": dataset_id, "overlap_share": dataset.overlap_share, **quality.agreement(db.session(), dataset)}
    )


@bp.put("/datasets/<id:dataset_id>/overlap")
@token_required(Role.ADMIN)
def overlap(dataset_id: int) -> Any:
    """``{"overlap_share": 0.1}``: that share of each auto-assignment also goes to a second annotator."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    share = json_body().get("overlap_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        return api_error(400, "overlap_share must be a number between 0 and 1")
    dataset.overlap_share = float(share)
    db.session.commit()
    return jsonify({"dataset_id": dataset_id, "overlap_share": dataset.overlap_share})


@bp.get("/datasets/<id:dataset_id>/live-loop")
@token_required(Role.ADMIN)
def live_loop_status(dataset_id: int) -> Any:
    """The live loop's setting and state: new labels since the last model, webhooks waiting."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    state = live_loop.status(db.session(), dataset)
    return jsonify(live_loop_json(dataset_id, state))


@bp.put("/datasets/<id:dataset_id>/live-loop")
@token_required(Role.ADMIN)
def live_loop_update(dataset_id: int) -> Any:
    """``{"retrain_after_labels": 50}`` (``null``: off): retrain after that many new labels;
    ``{"retune_at_labels": 120}`` (``0``: never; ``null``: automatic, on GPU workers only): fine-tune
    the encoder at that many labeled tasks."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    body = json_body()
    if not {"retrain_after_labels", "retune_at_labels"} & set(body):
        return api_error(
            400,
            "send retrain_after_labels (a whole number, or null to turn the live loop off) and/or "
            "retune_at_labels (a whole number, 0: never fine-tune the encoder, null: automatically on GPU workers)",
        )
    try:
        if "retrain_after_labels" in body:
            live_loop.set_threshold(dataset, body["retrain_after_labels"])
        if "retune_at_labels" in body:
            retune.set_threshold(dataset, body["retune_at_labels"])
    except ValueError as exc:
        return api_error(400, str(exc))
    db.session.commit()
    return live_loop_status(dataset_id)


# -- export and snapshots ------------------------------------------------------------------------
@bp.get("/datasets/<id:dataset_id>/export")
@token_required(Role.ADMIN)
def export_labels(dataset_id: int) -> Any:
    """``?format=csv|jsonl|parquet`` (and ``&originals=true`` for the texts before de-identification)."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    try:
        return export_response(
            dataset,
            request.args.get("format", "jsonl"),
            originals=request.args.get("originals", "").lower() in ("1", "true", "yes"),
            user=api_user(),
        )
    except DownloadRefused as exc:
        return api_error(exc.status, str(exc))


@bp.get("/datasets/<id:dataset_id>/snapshots")
@token_required(Role.ADMIN)
def list_snapshots(dataset_id: int) -> Any:
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    return jsonify({"snapshots": [snapshot_json(s) for s in snapshots.list_snapshots(db.session(), dataset_id)]})


@bp.post("/datasets/<id:dataset_id>/snapshots")
@token_required(Role.ADMIN)
def take_snapshot(dataset_id: int) -> Any:
    """Snapshot the labels now (201), or return the identical latest snapshot (200)."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    try:
        taken = snapshots.take(db.session(), dataset)
        db.session.commit()
    except snapshots.SnapshotError as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    return jsonify({"snapshot": snapshot_json(taken.snapshot), "created": taken.created}), 201 if taken.created else 200


# -- batch inference ------------------------------------------------------------------------------
@bp.post("/inference")
@token_required(Role.ADMIN)
def start_inference() -> Any:
    """Over a dataset: JSON ``{"dataset_id": 1, "model_id": null}``; over a file: a multipart form
    with ``file`` (CSV or JSONL with a ``text`` column) and ``model_id``. Returns the run and its job."""
    upload = request.files.get("file")
    try:
        if upload is not None:
            raw_model = request.form.get("model_id", "")
            if not raw_model.isdigit():
                return api_error(400, "an uploaded file needs a model_id")
            run = inference.create_for_upload(
                db.session(), upload.filename or "upload", upload.read(), int(raw_model), api_user()
            )
        else:
            body = json_body()
            raw_dataset = body.get("dataset_id")
            dataset = _dataset(raw_dataset) if isinstance(raw_dataset, int) else None
            if not isinstance(dataset, Dataset):
                return dataset if dataset is not None else api_error(400, "send a dataset_id, or upload a file")
            model_id = body.get("model_id")
            if model_id is not None and (not isinstance(model_id, int) or isinstance(model_id, bool)):
                return api_error(400, "model_id must be a model id or null")
            run = inference.create_for_dataset(db.session(), dataset, model_id, api_user())
        db.session.commit()
    except (inference.InferenceError, DatasetError) as exc:
        db.session.rollback()
        return api_error(400, str(exc))
    try:
        job = start_run(run, api_user())
    except (AirflowError, NotConfigured) as exc:
        return api_error(503, str(exc))
    return jsonify({"run": inference_json(run), "job_id": job.id, "job": job_json(job)}), 202


@bp.get("/inference")
@token_required(Role.ADMIN)
def inference_runs() -> Any:
    return jsonify({"runs": [inference_json(r) for r in inference.list_runs(db.session())]})


@bp.get("/inference/<id:run_id>")
@token_required(Role.ADMIN)
def inference_run(run_id: int) -> Any:
    run = db.session.get(InferenceRun, run_id)
    if run is None:
        return api_error(404, f"no batch-inference run {run_id}")
    return jsonify({"run": inference_json(run), "labels": inference.label_counts(db.session(), run_id)})


@bp.get("/inference/<id:run_id>/results")
@token_required(Role.ADMIN)
def inference_results(run_id: int) -> Any:
    """``?format=csv|jsonl``: the predictions, streamed."""
    run = db.session.get(InferenceRun, run_id)
    if run is None:
        return api_error(404, f"no batch-inference run {run_id}")
    try:
        return inference_response(run, request.args.get("format", "jsonl"))
    except DownloadRefused as exc:
        return api_error(exc.status, str(exc))


# -- training configs -----------------------------------------------------------------------------
@bp.get("/datasets/<id:dataset_id>/training_configs")
@token_required(Role.ADMIN)
def list_training_configs(dataset_id: int) -> Any:
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    rows = training_configs.list_configs(db.session(), dataset_id)
    return jsonify({"configs": [training_config_json(r) for r in rows]})


@bp.post("/datasets/<id:dataset_id>/training_configs")
@token_required(Role.ADMIN)
def save_training_config(dataset_id: int) -> Any:
    """``{"name": ..., "yaml": "..."}``: 201 when new, 200 when it replaced one of that name, 400 with
    ``problems`` (line, key, message) when it cannot be used."""
    dataset = _dataset(dataset_id)
    if not isinstance(dataset, Dataset):
        return dataset
    body = json_body()
    name, text = body.get("name"), body.get("yaml")
    if not isinstance(name, str) or not isinstance(text, str):
        return api_error(400, "give name and yaml as strings")
    existed = any(r.name == name.strip() for r in training_configs.list_configs(db.session(), dataset_id))
    try:
        row = training_configs.save(db.session(), dataset, name, text, api_user())
        db.session.commit()
    except ConfigError as exc:
        db.session.rollback()
        return jsonify({"error": str(exc), "status": 400, "problems": [vars(p) for p in exc.problems]}), 400
    return jsonify({"config": training_config_json(row)}), 200 if existed else 201

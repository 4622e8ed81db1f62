"""Label Studio's ML-backend contract, served by the platform at ``/ml``: the promoted model's
predictions in Label Studio's own labeling UI, new tasks included.

``GET /ml/health``, ``POST /ml/setup``, ``POST /ml/predict``, ``POST /ml/webhook`` and
``GET /ml/metrics`` (Prometheus text), as label-studio-ml-backend serves them. Optional basic
auth (ML_BACKEND_USER / ML_BACKEND_PASSWORD), which Label Studio sends when connected with it.
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from include.errors import Invalid
from include.services import ml_backend
from webapp.extensions import csrf, db

bp = Blueprint("ml", __name__)
_METRICS = {"predict_requests": 0, "predicted_tasks": 0, "embedded_now": 0, "predict_seconds": 0.0, "webhooks": 0}
_METRICS_LOCK = threading.Lock()


def _count(**values: float) -> None:
    with _METRICS_LOCK:
        for key, value in values.items():
            _METRICS[key] += value


@bp.before_request
def basic_auth() -> Any:
    """Basic auth when configured; the comparison takes the same time whatever the guess."""
    user, password = current_app.config.get("ML_BACKEND_USER"), current_app.config.get("ML_BACKEND_PASSWORD")
    if not user and not password:
        return None
    given = request.authorization
    ok = (
        given is not None
        and hmac.compare_digest(str(given.username or ""), str(user or ""))
        and hmac.compare_digest(str(given.password or ""), str(password or ""))
    )
    if ok:
        return None
    response = jsonify({"error": "basic auth required"})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="labelops-ml"'
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _dataset(raw_project: Any) -> Any:
    """The dataset behind the project Label Studio names; a project the platform does not serve
    is a bad request in the ML backend contract (Label Studio shows the message), not a 404."""
    try:
        return ml_backend.dataset_for_project(db.session(), raw_project)
    except ml_backend.UnknownProject as exc:
        raise Invalid(str(exc)) from exc


@bp.get("/health")
def health() -> Any:
    return jsonify({"status": "UP", "model_class": "LabelOpsPromotedHead"})


@bp.post("/setup")
def setup() -> Any:
    """Label Studio connects: answer the project's current model version."""
    dataset = _dataset(_body().get("project"))
    return jsonify({"model_version": ml_backend.model_version(db.session(), dataset) or "none"})


@bp.post("/predict")
def predict() -> Any:
    """``{"tasks": [...], "project": "<id>.<ts>"}`` → one result per task, in order."""
    started = time.perf_counter()
    body = _body()
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise Invalid("tasks must be a list")
    dataset = _dataset(body.get("project") or next((t.get("project") for t in tasks if isinstance(t, dict)), None))
    answer = ml_backend.predict(db.session(), dataset, [t if isinstance(t, dict) else {} for t in tasks])
    _count(
        predict_requests=1,
        predicted_tasks=len(tasks),
        embedded_now=answer.embedded_now,
        predict_seconds=time.perf_counter() - started,
    )
    return jsonify({"results": answer.results, "model_version": answer.model_version})


@bp.post("/webhook")
def webhook() -> Any:
    """Label Studio posts annotation events here; the labels themselves arrive through the export."""
    _count(webhooks=1)
    return jsonify({"status": "ok", "action": _body().get("action")})


@bp.get("/metrics")
def metrics() -> Any:
    with _METRICS_LOCK:
        values = dict(_METRICS)
    lines = [
        "# TYPE labelops_ml_predict_requests_total counter",
        f"labelops_ml_predict_requests_total {values['predict_requests']}",
        "# TYPE labelops_ml_predicted_tasks_total counter",
        f"labelops_ml_predicted_tasks_total {values['predicted_tasks']}",
        "# TYPE labelops_ml_embedded_on_the_fly_total counter",
        f"labelops_ml_embedded_on_the_fly_total {values['embedded_now']}",
        "# TYPE labelops_ml_predict_seconds_total counter",
        f"labelops_ml_predict_seconds_total {values['predict_seconds']:.6f}",
        "# TYPE labelops_ml_webhooks_total counter",
        f"labelops_ml_webhooks_total {values['webhooks']}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def register(app: Any) -> None:
    app.register_blueprint(bp, url_prefix="/ml")
    csrf.exempt(bp)  # called by Label Studio's server, never by a browser with our cookies

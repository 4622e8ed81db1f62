"""Label Studio's webhooks: ``POST /hooks/labelstudio``, the start of the live loop.

Label Studio gives up on a webhook after 1 s, so the receiver only checks the shared secret,
commits the delivery (include.services.webhooks) and wakes this process's asset signaller,
which tells Airflow. The project comes from the URL (``?project=``), the body holds only the
event's name; a delivery without the secret is refused before anything is read from the
database.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from include.errors import Forbidden, NotFound
from include.services import webhooks
from webapp.clients import wake_signaller
from webapp.extensions import csrf, db

bp = Blueprint("hooks", __name__)


@bp.post("/labelstudio")
def labelstudio() -> Any:
    secret = current_app.config.get("WEBHOOK_SECRET")
    if not secret:
        raise NotFound("webhooks are not configured here (WEBHOOK_URL, WEBHOOK_SECRET)")
    given = request.headers.get(webhooks.SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), str(secret).encode()):
        raise Forbidden(f"missing or wrong {webhooks.SECRET_HEADER}")
    project = request.args.get("project")
    if project is not None and not (project.isdigit() and 0 < int(project) < 2**31):
        raise webhooks.BadWebhook("'project' in the URL must be a Label Studio project id")
    received = webhooks.record(
        db.session(), request.get_data(cache=True), request.get_json(silent=True), int(project) if project else None
    )
    db.session.commit()
    if received.new:
        wake_signaller()
    answer = {"status": received.status, "action": received.action, "dataset_id": received.dataset_id}
    return jsonify(answer), 202 if received.new else 200


def register(app: Any) -> None:
    app.register_blueprint(bp, url_prefix="/hooks")
    csrf.exempt(bp)  # called by Label Studio's server with a shared secret, never with our cookies

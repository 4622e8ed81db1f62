"""Which Label Studio project a dataset lives in: create it, or validate LS_PROJECT_ID."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Dataset, LsProject
from include.labelstudio.client import LabelStudioClient, LabelStudioError
from include.labelstudio.label_config import build_label_config, validate_project_config
from include.services.ls_identity import REMEDY, LabelStudioChanged, check_instance, check_new_project, check_project

log = logging.getLogger(__name__)


# Label Studio refuses a project title over 50 characters (a 400 on create); dataset names may
# have 128, so a long name is shortened to fit. The project is found again by its marker in the
# description (project_marker), never by its title alone.
LS_TITLE_MAX = 50


def project_title(dataset: Dataset) -> str:
    suffix = f" (LabelOps dataset {dataset.id})"
    room = LS_TITLE_MAX - len(suffix)
    name = dataset.name if len(dataset.name) <= room else dataset.name[: room - 1].rstrip() + "…"
    return f"{name}{suffix}"


def project_marker(dataset: Dataset) -> str:
    """Identifies the dataset row for good (ids restart when a database is recreated; this does not)."""
    return f"[labelops dataset {dataset.id} created {dataset.created_at.isoformat()}]"


def _remember(session: Session, project: dict, owned: bool) -> None:
    created = str(project.get("created_at") or "") or None
    stmt = insert(LsProject).values(
        ls_project_id=int(project["id"]), title=str(project.get("title", "")), owned=owned, ls_created_at=created
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["ls_project_id"],
            set_={
                "title": stmt.excluded.title,
                "ls_created_at": func.coalesce(LsProject.ls_created_at, stmt.excluded.ls_created_at),
            },
        )
    )


@dataclass(frozen=True)
class ProjectRef:
    """A dataset's project; ``created`` when this call made it (so it holds no tasks yet)."""

    id: int
    created: bool


@dataclass(frozen=True)
class MlBackendRef:
    """The platform's ML backend as Label Studio reaches it (include.config: ML_BACKEND_*)."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WebhookRef:
    """The platform's webhook receiver as Label Studio reaches it (WEBHOOK_URL, WEBHOOK_SECRET)."""

    url: str
    secret: str = field(repr=False)


def ensure_project(
    session: Session,
    client: LabelStudioClient,
    dataset: Dataset,
    *,
    default_project_id: int | None = None,
    search_existing: bool = True,
) -> ProjectRef:
    """Return the dataset's Label Studio project id, creating or validating it first.

    A dataset keeps the project it was first imported into. Otherwise, with ``default_project_id``
    (LS_PROJECT_ID) set, that project is validated against the dataset's labels and used; without
    it, a project with the platform's labeling config is created (or found again by title after a
    crash, so a re-run never creates a second one).

    Raises:
        LabelStudioConfigError: the project's labeling config cannot hold the dataset's labels.
        LabelStudioNotFound: the configured project does not exist.
    """
    labels = list(dataset.labels)
    if dataset.ls_project_id is not None:
        project = check_project(session, client, dataset.ls_project_id, client.get_project(dataset.ls_project_id))
        state = session.get(LsProject, dataset.ls_project_id)
        if state is not None and state.owned and project_marker(dataset) not in (project.get("description") or ""):
            raise LabelStudioChanged(
                f"Label Studio project {dataset.ls_project_id} at {client.base_url} is not dataset "
                f"“{dataset.name}”'s project: it does not carry the dataset's marker. A new or reset Label "
                f"Studio numbers its projects from 1 again. {REMEDY}",
                project_id=dataset.ls_project_id,
            )
        validate_project_config(project, labels, client.base_url)
        _remember(session, project, owned=False)
        return ProjectRef(dataset.ls_project_id, created=False)
    if default_project_id is not None:
        project = check_project(session, client, default_project_id, client.get_project(default_project_id))
        validate_project_config(project, labels, client.base_url)
        dataset.ls_project_id = default_project_id
        _remember(session, project, owned=False)
        return ProjectRef(default_project_id, created=False)
    check_instance(session, client)
    title = project_title(dataset)
    marker = project_marker(dataset)
    # Listing projects is slow on a busy Label Studio: only look when a run may have made one.
    existing = _find_by_title(client, title, marker) if search_existing else None
    created = existing is None
    if existing is not None:
        validate_project_config(existing, labels, client.base_url)
        project = existing
    else:
        description = f"{dataset.description}\n\n{marker}".strip()
        project = client.create_project(title, build_label_config(labels), description=description)
        log.info("created Label Studio project %s for dataset %s", project["id"], dataset.id)
    check_new_project(session, client, project)
    dataset.ls_project_id = int(project["id"])
    _remember(session, {**project, "title": title}, owned=True)
    session.flush()
    return ProjectRef(dataset.ls_project_id, created=created)


def connect_ml_backend(
    session: Session, client: LabelStudioClient, project_id: int, backend: MlBackendRef
) -> str | None:
    """Connect the platform's ML backend to a project the platform owns, unless it already is, so
    annotators see the promoted model's predictions in Label Studio; returns why it failed (the
    import goes on: predictions are a convenience).

    Checked on every import, so a run that died between creating the project and connecting it
    is mended by the next. Call it once the project's dataset is committed: Label Studio asks the
    backend's ``/setup`` at once, and the backend finds the dataset by its project.
    """
    state = session.get(LsProject, project_id)
    if state is None or not state.owned:
        return None  # a project someone else made (LS_PROJECT_ID) is theirs to configure
    try:
        connected = client.request("GET", "/api/ml", project_id=project_id, params={"project": project_id})
        if any(str(b.get("url", "")).rstrip("/") == backend.url.rstrip("/") for b in connected or []):
            return None
        client.connect_ml_backend(
            project_id, backend.url, "LabelOps promoted model", user=backend.user, password=backend.password
        )
    except LabelStudioError as exc:
        log.warning("ML backend %s not connected to project %s: %s", backend.url, project_id, exc)
        return f"ML backend not connected: {exc}"
    return None


def register_webhook(session: Session, client: LabelStudioClient, project_id: int, hook: WebhookRef) -> str | None:
    """Have Label Studio post annotation events of a project the platform owns to the receiver,
    with the shared secret in a header (updated when the secret or the events changed); returns
    why it failed (the import goes on: the hourly export still picks the labels up).

    Checked on every import, like the ML backend, so a rotated secret reaches every project.
    """
    from include.services.webhooks import ACTIONS, SECRET_HEADER, hook_url

    state = session.get(LsProject, project_id)
    if state is None or not state.owned:
        return None
    wanted = {
        "project": project_id,
        "url": hook_url(hook.url, project_id),
        "send_payload": False,  # the receiver needs the project (in the URL), never the task's text
        "send_for_all_actions": False,
        "is_active": True,
        "actions": list(ACTIONS),
        "headers": {SECRET_HEADER: hook.secret},
    }
    try:
        existing = client.request("GET", "/api/webhooks/", project_id=project_id, params={"project": project_id})
        ours = [  # Label Studio lists every project's webhooks, whatever the filter asks
            h
            for h in existing or []
            if h.get("project") == project_id
            and str(h.get("url", "")).split("?")[0].rstrip("/") == hook.url.rstrip("/")
        ]
        if not ours:
            client.request("POST", "/api/webhooks/", project_id=project_id, json_body=wanted)
        elif (
            ours[0].get("url") != wanted["url"]
            or ours[0].get("send_payload", True)
            or (ours[0].get("headers") or {}) != wanted["headers"]
            or sorted(ours[0].get("actions") or []) != sorted(ACTIONS)
            or not ours[0].get("is_active", True)
        ):
            client.request("PATCH", f"/api/webhooks/{int(ours[0]['id'])}/", project_id=project_id, json_body=wanted)
    except LabelStudioError as exc:
        log.warning("webhook %s not registered on project %s: %s", hook.url, project_id, exc)
        return f"webhook not registered: {exc}"
    return None


def push_instruction(session: Session, client: LabelStudioClient, project_id: int, dataset: Dataset) -> str | None:
    """Show the dataset's current guidelines as the project's instruction (Label Studio opens it
    before labeling), once per guidelines version; returns why it failed (the next import tries
    again: the version is recorded only once Label Studio has it)."""
    from include.services.guidelines import instruction_html

    state = session.get(LsProject, project_id)
    if state is None or not state.owned or state.instruction_version >= dataset.guidelines_version:
        return None
    try:
        check_project(session, client, project_id)  # never another instance's project of that number
        client.update_project(project_id, expert_instruction=instruction_html(dataset), show_instruction=True)
    except (LabelStudioError, LabelStudioChanged) as exc:
        log.warning("guidelines not sent to project %s: %s", project_id, exc)
        return f"guidelines not sent to Label Studio: {exc}"
    state.instruction_version = dataset.guidelines_version
    return None


def owned_project_ids(session: Session) -> list[int]:
    """The Label Studio projects the platform created (one per dataset)."""
    return sorted(int(p) for p in session.scalars(select(LsProject.ls_project_id).where(LsProject.owned.is_(True))))


def refresh_webhooks(session: Session, client: LabelStudioClient, hook: WebhookRef) -> list[str]:
    """Check the webhook of every project the platform owns (a rotated WEBHOOK_SECRET or a moved
    WEBHOOK_URL reaches them all, not only the projects that had items to import); returns the
    problems, one per project that could not be updated."""
    problems = []
    for project_id in owned_project_ids(session):
        problem = register_webhook(session, client, project_id, hook)
        if problem:
            problems.append(f"project {project_id}: {problem}")
    return problems


def _find_by_title(client: LabelStudioClient, title: str, marker: str) -> dict | None:
    """The project an interrupted run created for this very dataset row, if any."""
    body = client.request("GET", "/api/projects", params={"title": title, "page_size": 100})
    results = body.get("results", []) if isinstance(body, dict) else body
    for project in results or []:
        if project.get("title") == title and marker in (project.get("description") or ""):
            return client.get_project(int(project["id"]))
    return None


def export_watermark(session: Session, project_id: int) -> datetime | None:
    """Label Studio's ``updated_at`` of the newest task the export has applied (None: never exported)."""
    state = session.get(LsProject, project_id)
    return state.export_watermark if state is not None else None


def save_watermark(session: Session, project_id: int, newest: datetime | None) -> None:
    """Move the watermark forward (never back) once a page of tasks is applied."""
    state = session.get(LsProject, project_id)
    if state is None:
        state = LsProject(ls_project_id=project_id, title="")
        session.add(state)
    if newest is not None and (state.export_watermark is None or newest > state.export_watermark):
        state.export_watermark = newest


def mark_exported(session: Session, project_id: int) -> None:
    state = session.get(LsProject, project_id)
    if state is not None:
        state.last_export_at = datetime.now(UTC)


def record_model_version(session: Session, project_id: int, model_version: str) -> None:
    """The model version Label Studio serves predictions of (its project's ``model_version``)."""
    stmt = insert(LsProject).values(ls_project_id=project_id, title="", model_version=model_version)
    session.execute(stmt.on_conflict_do_update(index_elements=["ls_project_id"], set_={"model_version": model_version}))


def served_model_version(session: Session, project_id: int | None) -> str | None:
    """The model version whose predictions Label Studio shows and orders by, if any."""
    state = session.get(LsProject, project_id) if project_id is not None else None
    return state.model_version if state is not None else None

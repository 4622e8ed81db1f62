"""Which Label Studio the platform's tasks live in, checked before anything is synced.

Label Studio numbers projects, tasks and annotations from 1 in every new instance, so a wiped,
reset or replaced Label Studio at the same ``LS_URL`` answers for ids that meant other things:
one dataset's labels would be written onto another's tasks. Two marks catch it:

* the instance: its organization's id and creation time, recorded at first contact (a restored
  backup keeps them, a new instance has others; a new URL with the same organization is the same
  instance moved, and is accepted);
* each project: its own ``created_at`` as Label Studio wrote it, recorded when the platform first
  used it, and for the projects the platform made, the dataset's marker in its description.

A mismatch raises :class:`LabelStudioChanged` (409) with what changed and what to do; every sync
path (import, export, outbox delivery, pre-labeling) stops there instead of writing.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from include.db.models import LsInstance, LsProject
from include.errors import Conflict
from include.labelstudio.client import LabelStudioClient

# An outbox dispatcher delivers batch after batch: it need not ask again every second.
CHECK_TTL_S = 30.0
_checked: dict[tuple[str, str, int | None], float] = {}  # (database, Label Studio, project)
_lock = threading.Lock()

REMEDY = (
    "Sync is stopped so that no label lands on the wrong task. Point LS_URL at the Label Studio "
    "the platform's tasks were imported into, or restore that instance's data (a backup of the "
    "same instance is accepted)."
)


class LabelStudioChanged(Conflict):
    """Label Studio is not the instance, or a project not the project, the platform's tasks live in."""


def _organization(client: LabelStudioClient) -> tuple[int, str]:
    body = client.request("GET", "/api/organizations/")
    orgs = body.get("results", []) if isinstance(body, dict) else body
    if not orgs:
        raise LabelStudioChanged(f"Label Studio at {client.base_url} lists no organization for this token")
    first = min(orgs, key=lambda o: int(o["id"]))
    return int(first["id"]), str(first.get("created_at") or "")


def check_instance(session: Session, client: LabelStudioClient) -> None:
    """Record the instance at first contact; afterwards refuse another one.

    Raises:
        LabelStudioChanged: the organization is not the recorded one.
    """
    if _fresh(session, client, None):
        return
    org_id, created = _organization(client)
    row = session.get(LsInstance, 1)
    now = datetime.now(UTC)
    if row is None:
        session.add(LsInstance(id=1, url=client.base_url, organization_id=org_id, organization_created_at=created))
        session.flush()
    elif (row.organization_id, row.organization_created_at) != (org_id, created):
        raise LabelStudioChanged(
            f"Label Studio at {client.base_url} is not the instance this platform's tasks live in: its "
            f"organization {org_id} was created {created}, the platform's ({row.organization_id}, first "
            f"seen at {row.url}) was created {row.organization_created_at}. {REMEDY}",
            expected=row.organization_created_at,
            found=created,
        )
    else:
        row.url, row.last_seen_at = client.base_url, now  # moved to another URL: the same instance
    _remember(session, client, None)


def check_project(
    session: Session, client: LabelStudioClient, project_id: int, project: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The project as Label Studio has it, once it is known to be the platform's own.

    Raises:
        LabelStudioChanged: the instance changed, or the project id names another project now.
    """
    check_instance(session, client)
    state = session.get(LsProject, project_id)
    known = state is not None and state.ls_created_at is not None
    if known and project is None and _fresh(session, client, project_id):
        return {"id": project_id}
    project = project if project is not None else client.get_project(project_id)
    created = str(project.get("created_at") or "")
    if state is not None:
        if state.ls_created_at is None:
            state.ls_created_at = created  # first check since the upgrade that records it
        elif state.ls_created_at != created:
            raise LabelStudioChanged(
                f"Label Studio project {project_id} at {client.base_url} is not the project the platform "
                f"synced as {project_id} (“{state.title}”): it was created {created}, that one {state.ls_created_at}. "
                f"A new or reset Label Studio numbers its projects from 1 again. {REMEDY}",
                project_id=project_id,
            )
    _remember(session, client, project_id)
    return project


def check_new_project(session: Session, client: LabelStudioClient, project: dict[str, Any]) -> None:
    """A project Label Studio just created must have an id the platform has never used.

    Raises:
        LabelStudioChanged: the platform knows that id as another project's.
    """
    project_id = int(project["id"])
    known = session.get(LsProject, project_id)
    if known is not None and known.ls_created_at != str(project.get("created_at") or ""):
        raise LabelStudioChanged(
            f"Label Studio at {client.base_url} gave a new project the id {project_id}, which the platform "
            f"knows as “{known.title}”: this Label Studio is not the one that project lives in (a new or "
            f"reset instance numbers its projects from 1 again). {REMEDY}",
            project_id=project_id,
        )


def forget_checks() -> None:
    """Check again on the next call (tests, and after a settings change)."""
    with _lock:
        _checked.clear()


def _key(session: Session, client: LabelStudioClient, project_id: int | None) -> tuple[str, str, int | None]:
    return (str(session.get_bind().engine.url), client.base_url, project_id)


def _fresh(session: Session, client: LabelStudioClient, project_id: int | None) -> bool:
    with _lock:
        at = _checked.get(_key(session, client, project_id))
    return at is not None and time.monotonic() - at < CHECK_TTL_S


def _remember(session: Session, client: LabelStudioClient, project_id: int | None) -> None:
    with _lock:
        _checked[_key(session, client, project_id)] = time.monotonic()

"""Saving a dataset's guidelines from the page or the API: one path for both.

Saved and committed first; then Label Studio's project gets them as its instruction at once
when it can be reached (otherwise the next import sends them: nothing waits on Label Studio).
"""

from __future__ import annotations

from include.db.models import Dataset, User
from include.errors import Unavailable
from include.labelstudio.client import LabelStudioError
from include.services import guidelines
from include.services.ls_projects import push_instruction
from webapp.clients import ls_client
from webapp.extensions import db


def save_guidelines(dataset: Dataset, body: guidelines.Guidelines, user: User) -> tuple[guidelines.Saved, str]:
    """Save a new version (if anything changed); returns it and the sentence that confirms it."""
    saved = guidelines.save(db.session(), dataset, body, user.id)
    db.session.commit()
    if not saved.changed:
        return saved, f"The guidelines are unchanged (version {saved.version})."
    message = f"Guidelines saved as version {saved.version}."
    if dataset.ls_project_id is not None:
        try:
            problem = push_instruction(db.session(), ls_client(), dataset.ls_project_id, dataset)
            db.session.commit()
        except (Unavailable, LabelStudioError) as exc:
            problem = str(exc)
        message += (
            " Label Studio shows them too."
            if problem is None
            else f" Label Studio gets them with the next import ({problem})."
        )
    return saved, message

"""API: one task's assignment and its place in the evaluation set."""

from __future__ import annotations

from typing import Any

from include.services import eval_set
from include.services.assignment import assign_task, unassign_task
from include.services.eval_set import Membership
from include.services.users import find_user
from webapp.api import api_user, route
from webapp.extensions import db
from webapp.serializers import eval_set_json, task_json

TAG = "tasks"


@route("POST", "/tasks/<bigid:task_id>/assign/<username>", tag=TAG, response="TaskEnvelope", errors=(404,))
def assign(task_id: int, username: str) -> dict[str, Any]:
    """Assign (or reassign) one unlabeled task to an annotator."""
    task = assign_task(db.session(), task_id, find_user(db.session(), username))
    db.session.commit()
    return {"task": task_json(task)}


@route("POST", "/tasks/<bigid:task_id>/unassign", tag=TAG, response="TaskEnvelope", errors=(404,))
def unassign(task_id: int) -> dict[str, Any]:
    """Return a task to the pool."""
    task = unassign_task(db.session(), task_id)
    db.session.commit()
    return {"task": task_json(task)}


@route("POST", "/tasks/<bigid:task_id>/eval", tag=TAG, body=Membership, response="EvalSet", errors=(404,))
def task_eval(task_id: int, body: Membership) -> dict[str, Any]:
    """Add a labeled task to the evaluation set (``{"member": true}``) or drop it (``false``)."""
    dataset, message = eval_set.set_task_membership(db.session(), task_id, body, api_user().id)
    db.session.commit()
    return {"message": message, **eval_set_json(dataset, eval_set.current_set(db.session(), dataset))}

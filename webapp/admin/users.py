"""Admin: accounts (create, reset password, deactivate)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from include.db.models import Role, User
from include.errors import Conflict
from include.services.users import (
    NewUser,
    all_users,
    create_user,
    generate_password,
    pending_counts,
    set_active,
    set_password,
)
from webapp.admin import bp
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required


def users_view(values: dict[str, Any] | None = None, issued: dict[str, str] | None = None) -> Any:
    return render_template(
        "admin/users.html",
        new_user=NewUser.specs(),
        values=values or {"role": Role.ANNOTATOR.value},
        users=all_users(db.session()),
        pending=pending_counts(db.session()),
        csrf_form=CsrfForm(),
        issued=issued,
    )


def _shown_once(username: str, password: str, message: str) -> Any:
    """The users page with a new password on it, answered to this POST itself.

    Not flashed: a flash lives in the session cookie, which Flask signs but does not encrypt, so
    the password would travel back with every request until the next page is shown. Not
    stored by the browser or a proxy either (no-store).
    """
    response = make_response(users_view(issued={"username": username, "password": password, "message": message}))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/users")
@admin_required
def users() -> Any:
    """List users; create one with a generated password shown once."""
    return users_view()


@bp.post("/users")
@admin_required
@shown_on(lambda: users_view(request.form.to_dict()))
def new_user() -> Any:
    """Create a user with a generated password, shown once."""
    checked(CsrfForm())
    values = NewUser.parse(request.form.to_dict(), form=True)
    password = generate_password()
    user = create_user(db.session(), values.username, values.email, password, Role(values.role))
    db.session.commit()
    return _shown_once(user.username, password, f"Created {user.username}. Their password (shown once):")


@bp.post("/users/<id:user_id>/reset-password")
@admin_required
def reset_password(user_id: int) -> Any:
    """Give a user a new generated password (shown once); their sessions end."""
    checked(CsrfForm())
    user = db.session.get(User, user_id) or abort(404)
    password = generate_password()
    set_password(user, password)
    db.session.commit()
    return _shown_once(user.username, password, f"New password for {user.username} (shown once):")


@bp.post("/users/<id:user_id>/toggle-active")
@admin_required
@shown_on(lambda user_id: users_view())
def toggle_active(user_id: int) -> Any:
    """Deactivate (ending their sessions, returning their open tasks) or reactivate an account."""
    checked(CsrfForm())
    user = db.session.get(User, user_id) or abort(404)
    if user.id == current_user.id:
        raise Conflict("You cannot deactivate your own account.")
    returned = set_active(db.session(), user, not user.active)
    db.session.commit()
    message = f"{user.username} is now {'active' if user.active else 'deactivated'}."
    if returned:
        message += f" {returned} unlabeled tasks went back to the pool."
    flash(message, "success")
    return redirect(url_for("admin.users"))

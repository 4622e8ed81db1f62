"""Admin: accounts (create, reset password, deactivate)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from include.db.models import Role, User
from include.services.users import (
    UserError,
    all_users,
    create_user,
    generate_password,
    pending_counts,
    set_active,
    set_password,
)
from webapp.admin import bp
from webapp.admin.forms import UserForm
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.security import admin_required


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    """List users; create one with a generated password shown once."""
    form = UserForm()
    if form.validate_on_submit():
        password = generate_password()
        try:
            user = create_user(
                db.session(), form.username.data or "", form.email.data or "", password, Role(form.role.data)
            )
            db.session.commit()
        except UserError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            flash(f"Created {user.username}. Their password (shown once): {password}", "success")
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/users.html",
        form=form,
        users=all_users(db.session()),
        pending=pending_counts(db.session()),
        csrf_form=CsrfForm(),
    )


@bp.post("/users/<id:user_id>/reset-password")
@admin_required
def reset_password(user_id: int) -> Any:
    """Give a user a new generated password (shown once); their sessions end."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id) or abort(404)
    password = generate_password()
    set_password(user, password)
    db.session.commit()
    flash(f"New password for {user.username} (shown once): {password}", "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<id:user_id>/toggle-active")
@admin_required
def toggle_active(user_id: int) -> Any:
    """Deactivate (ending their sessions, returning their open tasks) or reactivate an account."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id) or abort(404)
    if user.id == current_user.id:
        flash("You cannot deactivate your own account.", "error")
        return redirect(url_for("admin.users"))
    returned = set_active(db.session(), user, not user.active)
    db.session.commit()
    message = f"{user.username} is now {'active' if user.active else 'deactivated'}."
    if returned:
        message += f" {returned} unlabeled tasks went back to the pool."
    flash(message, "success")
    return redirect(url_for("admin.users"))

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from include.db.models import Role
from include.services.users import authenticate
from webapp.auth import bp, throttle
from webapp.auth.forms import LoginForm
from webapp.extensions import db
from webapp.security import is_safe_next


def home_for(user: Any) -> str:
    homes = {Role.ADMIN: "admin.dashboard", Role.REVIEWER: "review.queue_page"}
    return url_for(homes.get(user.role, "annotator.tasks"))


@bp.route("/")
def index() -> Any:
    """Send people to their home page."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Log in with username and password."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        username = form.username.data or ""
        refused = throttle.refusal(username)
        if refused is not None:
            flash(
                _("%(reason)s. Try again in %(n)s seconds.", reason=refused.reason.capitalize(), n=refused.retry_after),
                "error",
            )
            response = make_response(render_template("auth/login.html", form=form), 429)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        user = authenticate(db.session(), username, form.password.data or "")
        if user is None:
            flash(_("Wrong username or password."), "error")
            return render_template("auth/login.html", form=form), 401
        user.last_login_at = datetime.now(UTC)
        db.session.commit()
        login_user(user, remember=bool(form.remember.data))
        target = form.next.data
        return throttle.succeeded(username, redirect(target if is_safe_next(target) else home_for(user)))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    """Log out everywhere (POST, so a link elsewhere cannot log you out).

    Bumping the session generation ends this user's other sessions and remember cookies too, so
    a copied cookie stops working once its owner logs out.
    """
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> Any:
    """Switch the interface language: kept in the user's profile (and a cookie for the login page)."""
    from webapp.forms import CsrfForm, checked
    from webapp.i18n import COOKIE, LANGUAGES

    checked(CsrfForm())
    chosen = request.form.get("language", "")
    if chosen not in LANGUAGES:
        chosen = "en"
    if current_user.is_authenticated:
        current_user.language = chosen
        db.session.commit()
    back = request.form.get("next", "")
    response = make_response(redirect(back if is_safe_next(back) else url_for("auth.index")))
    response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response

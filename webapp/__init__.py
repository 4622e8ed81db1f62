"""LabelOps web app: admins assign and monitor, annotators label their own tasks.

Application factory (flaskr / microblog style): extensions are created unbound in
``extensions.py`` and bound here; one blueprint per audience.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from webapp.args import BadArgument, BigIdConverter, IdConverter, has_nul
from webapp.config import Config, load_config
from webapp.extensions import csrf, db, login_manager
from webapp.security import load_session_user

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides (tests); otherwise everything comes from the environment."""
    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.update(config if config is not None else load_config())
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["bigid"] = BigIdConverter

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_session_user)

    from webapp.admin import bp as admin_bp
    from webapp.annotator import bp as annotator_bp
    from webapp.api import bp as api_bp
    from webapp.auth import bp as auth_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(annotator_bp, url_prefix="/me")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # bearer-token API: no cookies, so no CSRF
    from webapp import ml_backend

    ml_backend.register(app)
    from webapp import hooks

    hooks.register(app)

    from webapp.cli import register_cli

    register_cli(app)
    _register_error_handlers(app)

    @app.before_request
    def refuse_nul() -> None:
        """PostgreSQL cannot store NUL characters: refuse them before any view queries with one."""
        if has_nul(request.path) or any(has_nul(k) or has_nul(v) for k, v in request.args.items(multi=True)):
            raise BadArgument("The address contains a NUL character (%00), which is not allowed.")
        if request.form and any(has_nul(k) or has_nul(v) for k, v in request.form.items(multi=True)):
            raise BadArgument("The form contains a NUL character, which is not allowed.")

    from webapp.health import bp as health_bp

    app.register_blueprint(health_bp)

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        return response

    return app


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _register_error_handlers(app: Flask) -> None:
    messages = {
        400: "The request was not valid.",
        403: "You do not have access to this page.",
        404: "Nothing here.",
        405: "That action is not allowed here.",
        413: "The upload is too large.",
        429: "Too many attempts. Wait a minute and try again.",
        500: "Something went wrong on our side. It has been logged.",
    }

    def unavailable() -> Any:
        """503 without touching the database (the error page must not load the user)."""
        message = "The database is unavailable right now. Try again in a few seconds; nothing was changed."
        if _wants_json():
            response = jsonify({"error": message, "status": 503})
        else:
            # Straight from the Jinja environment: render_template's context processors would load
            # the user (flask-login's current_user), which needs the database.
            page = current_app.jinja_env.get_template("errors/unavailable.html").render(message=message)
            response = current_app.response_class(page, mimetype="text/html")
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    def render_error(code: int, message: str) -> Any:
        if _wants_json():
            return jsonify({"error": message, "status": code}), code
        try:
            return render_template("errors/error.html", code=code, message=message), code
        except (OperationalError, InterfaceError):  # the page's header needs the user: no database
            return unavailable()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        message = messages.get(code, exc.description or "Error")
        if isinstance(exc, BadArgument) and exc.description:
            message = exc.description
        elif code == 400 and exc.description and "CSRF" in exc.description:
            message = "Your form expired. Reload the page and try again."
        return render_error(code, message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(exc: Exception) -> Any:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, getattr(exc, "orig", exc))
        _rollback_quietly()
        return unavailable()

    @app.errorhandler(DataError)
    def data_error(exc: DataError) -> Any:
        """A value the database cannot hold (out of range, malformed) is the request's fault."""
        log.warning("rejected a value on %s %s: %s", request.method, request.path, exc.orig)
        db.session.rollback()
        return render_error(400, "The request contains a value the database cannot store.")

    @app.errorhandler(Exception)
    def unhandled(exc: Exception) -> Any:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return database_unavailable(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback_quietly()
        return render_error(500, messages[500])


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception as exc:  # the connection is gone already
        log.debug("rollback after a database error failed: %s", exc)

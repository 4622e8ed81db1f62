"""LabelOps web app: admins assign and monitor, annotators label their own tasks.

Application factory (flaskr / microblog style): extensions are created unbound in
``extensions.py`` and bound here; one blueprint per audience.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from flask_babel import lazy_gettext

from webapp import errors
from webapp.args import BadArgument, BigIdConverter, IdConverter, has_cjk, has_nul
from webapp.config import Config, load_config
from webapp.extensions import csrf, db, login_manager
from webapp.security import load_session_user

log = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides (tests); otherwise everything comes from the environment."""
    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.update(config if config is not None else load_config())
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["bigid"] = BigIdConverter

    db.init_app(app)
    csrf.init_app(app)
    from webapp import i18n

    i18n.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to continue.")
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_session_user)

    from webapp.admin import bp as admin_bp
    from webapp.annotator import bp as annotator_bp
    from webapp.api import bp as api_bp
    from webapp.auth import bp as auth_bp
    from webapp.review import bp as review_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(annotator_bp, url_prefix="/me")
    app.register_blueprint(review_bp, url_prefix="/review")
    app.jinja_env.tests["cjk"] = has_cjk
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # bearer-token API: no cookies, so no CSRF
    from webapp import ml_backend

    ml_backend.register(app)
    from webapp import hooks

    hooks.register(app)

    from webapp.cli import register_cli

    register_cli(app)
    errors.register(app)

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

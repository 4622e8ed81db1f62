"""Web app configuration classes, built from the platform settings (environment)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from include.config import DEFAULT_LABELS, Settings, SettingsError, load_settings


class Config:
    """Production defaults; values that depend on the environment come from :func:`from_settings`."""

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # "Remember me" keeps an annotator logged in for a working fortnight, not a year.
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    # pre-ping: a connection the database dropped (restart, outage) is replaced, not used; a short
    # connect timeout: with the database away, pages answer 503 at once instead of hanging.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 5,
        "connect_args": {"connect_timeout": 2},
    }
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024  # uploads: 20 MB
    UPLOAD_MAX_ROWS = 100_000
    LOGIN_THROTTLE_ENABLED = True
    DEFAULT_LABELS: ClassVar[list[str]] = list(DEFAULT_LABELS)  # LABELS, for new datasets
    API_TOKEN_MAX_AGE = 12 * 3600
    JOBS_REFRESH_SECONDS = 3
    # Deliver the label outbox from a thread of each web process (entries are claimed with SKIP
    # LOCKED, so any number of processes may do it); every OUTBOX_SWEEP_SECONDS and on each label.
    OUTBOX_DISPATCHER = True
    OUTBOX_SWEEP_SECONDS = 5.0
    LS_WRITE_CONCURRENCY = 1
    # Tell Airflow about Label Studio webhooks from a thread of each web process (the live loop).
    ASSET_SIGNALLER = True
    # Keep job rows in step with Airflow from a thread of each web process (woken by job pages).
    JOB_RECONCILER = True
    JOB_RECONCILE_SECONDS = 10.0
    TESTING = False

    @staticmethod
    def from_settings(settings: Settings) -> dict[str, Any]:
        """Settings-derived values; SECRET_KEY and a database are required to serve."""
        return {
            "SECRET_KEY": settings.require("secret_key"),
            "SQLALCHEMY_DATABASE_URI": settings.require("database_url"),
            "SESSION_COOKIE_SECURE": settings.cookie_secure,
            "REMEMBER_COOKIE_SECURE": settings.cookie_secure,
            "DEFAULT_LABELS": list(settings.labels),
            "LS_URL": settings.ls_url,
            "LS_PUBLIC_URL": settings.ls_public_url,
            "LS_API_TOKEN": settings.ls_api_token,
            "LS_TIMEOUT": min(settings.ls_timeout, 30.0),
            "LS_WRITE_CONCURRENCY": settings.ls_write_concurrency,
            # One connection per request thread and two to spare: WEB_WORKERS x (threads + 2)
            # for requests, whatever the workers, so compose's PostgreSQL (100) is not exhausted.
            "SQLALCHEMY_ENGINE_OPTIONS": {
                **Config.SQLALCHEMY_ENGINE_OPTIONS,
                "pool_size": settings.web_threads,
                "max_overflow": 2,
            },
            "AIRFLOW_API_URL": settings.airflow_api_url,
            "AIRFLOW_PUBLIC_URL": settings.airflow_public_url,
            "AIRFLOW_API_USER": settings.airflow_api_user,
            "AIRFLOW_API_PASSWORD": settings.airflow_api_password,
            "OPENAI_EMBEDDING_MODEL": settings.openai_embedding_model if settings.openai_base_url else None,
            "PII_KEY": settings.pii_key,
            "PII_KEY_PREVIOUS": settings.pii_key_previous,
            "ML_BACKEND_USER": settings.ml_backend_user,
            "ML_BACKEND_PASSWORD": settings.ml_backend_password,
            "WEBHOOK_SECRET": settings.webhook_secret,
            # the LLM recognizer (names, addresses) for trying a policy that uses it
            "PII_LLM": bool(settings.openai_base_url or settings.ollama_base_url),
        }


def load_config() -> dict[str, Any]:
    """Config for serving; raises SettingsError naming the missing or malformed variable."""
    settings = load_settings()
    if not settings.secret_key:
        raise SettingsError("SECRET_KEY", "a long random string to sign sessions; it is not set")
    return Config.from_settings(settings)

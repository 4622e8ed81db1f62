"""Web app configuration classes, built from the platform settings (environment)."""

from __future__ import annotations

from typing import Any, ClassVar

from include.config import Settings, SettingsError, load_settings


class Config:
    """Production defaults; values that depend on the environment come from :func:`from_settings`."""

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024  # uploads: 20 MB
    UPLOAD_MAX_ROWS = 100_000
    LOGIN_RATE_LIMIT = "10 per minute"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    API_TOKEN_MAX_AGE = 12 * 3600
    JOBS_REFRESH_SECONDS = 3
    TESTING = False

    @staticmethod
    def from_settings(settings: Settings) -> dict[str, Any]:
        """Settings-derived values; SECRET_KEY and a database are required to serve."""
        database_url = settings.require("database_url")
        secret_key = settings.require("secret_key")
        import os

        return {
            "SECRET_KEY": secret_key,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SESSION_COOKIE_SECURE": os.environ.get("COOKIE_SECURE", "").lower() in ("1", "true", "yes"),
            "REMEMBER_COOKIE_SECURE": os.environ.get("COOKIE_SECURE", "").lower() in ("1", "true", "yes"),
            "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
            "LS_URL": settings.ls_url,
            "LS_PUBLIC_URL": os.environ.get("LS_PUBLIC_URL") or settings.ls_url,
            "LS_API_TOKEN": settings.ls_api_token,
            "LS_TIMEOUT": min(settings.ls_timeout, 30.0),
            "AIRFLOW_API_URL": settings.airflow_api_url,
            "AIRFLOW_PUBLIC_URL": os.environ.get("AIRFLOW_PUBLIC_URL") or settings.airflow_api_url,
            "AIRFLOW_API_USER": settings.airflow_api_user,
            "AIRFLOW_API_PASSWORD": settings.airflow_api_password,
        }


def load_config() -> dict[str, Any]:
    """Config for serving; raises SettingsError naming the missing or malformed variable."""
    settings = load_settings()
    if not settings.secret_key:
        raise SettingsError("SECRET_KEY", "a long random string to sign sessions; it is not set")
    return Config.from_settings(settings)

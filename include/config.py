"""Platform settings, read from environment variables.

Nothing is read at import time: call :func:`load_settings` where settings are needed. Every
variable is documented in ``.env.example``. A missing or malformed value raises
:class:`SettingsError` naming the variable and what is expected, so a bad deployment fails
at start instead of half-way through a pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS: tuple[str, ...] = ("OK", "NG")
# The embedded Label Studio's database when LS_DATABASE is unset: the faster of the two at 100,000
# tasks, PostgreSQL unless it is more than 10 % slower (bench/ls_database.py; figures in README).
LS_DATABASE_DEFAULT = "sqlite"
# Gunicorn's workers and threads per worker (webapp/gunicorn.conf.py): bench/load.py's best for
# 50 annotators on 2 cores. The request pool of each worker is sized from the threads.
WEB_WORKERS_DEFAULT = 2
WEB_THREADS_DEFAULT = 8
# How the local sentence encoder runs on CPU: "auto" is ONNX Runtime fp32 (the torch vectors)
# where onnxruntime is installed and torch otherwise; "onnx-int8" is ~2.2x faster with vectors
# ~1 % off (include/ml/embeddings/onnx.py); a GPU always runs torch.
EMBED_RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, expected: str, got: str | None = None) -> None:
        self.variable = variable
        shown = "" if got is None else f" (got {got!r})"
        super().__init__(f"{variable}: expected {expected}{shown}")


@dataclass(frozen=True)
class Settings:
    """Validated configuration. ``None`` means "not configured" (embedded default or feature off)."""

    home: Path
    database_url: str | None = field(repr=False)  # may hold a password
    ls_url: str | None
    ls_api_token: str | None = field(repr=False)
    ls_project_id: int | None
    labels: tuple[str, ...]
    ls_timeout: float
    # Label Studio writes of the label outbox at once, over all web processes (see label_outbox).
    ls_write_concurrency: int
    web_threads: int  # gunicorn threads per worker: the size of each worker's request pool
    ollama_base_url: str | None
    ollama_model: str
    ollama_timeout: float
    openai_base_url: str | None
    openai_api_key: str | None = field(repr=False)
    openai_model: str
    openai_embedding_model: str
    openai_timeout: float
    secret_key: str | None = field(repr=False)
    pii_key: str | None = field(repr=False)  # a Fernet key: encrypts de-identification mappings
    airflow_api_url: str
    airflow_api_user: str
    airflow_api_password: str | None = field(repr=False)
    # Links people's browsers follow (default: the URLs the platform itself uses).
    ls_public_url: str | None
    # The platform's Label Studio ML backend as Label Studio reaches it (connected to every project
    # the platform creates); None: not connected. Optional basic auth on it.
    ml_backend_url: str | None
    ml_backend_user: str | None
    ml_backend_password: str | None = field(repr=False)
    # The live loop: the platform's webhook receiver as Label Studio reaches it, registered on
    # every project the platform creates, and the secret Label Studio sends in a header with each
    # delivery. Both or neither; None: no webhooks (the hourly export still picks labels up).
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)
    airflow_public_url: str
    cookie_secure: bool
    # The embedded Label Studio's admin account (make run; its password is generated).
    ls_admin_email: str
    # Where the embedded Label Studio keeps its data: "postgresql" (a ``labelstudio`` database on
    # the platform's PostgreSQL server) or "sqlite" (a file in its data folder).
    ls_database: str
    # Ports of the embedded stack (make run).
    pg_port: int
    ls_port: int
    airflow_port: int
    webapp_port: int
    # The webhook receiver's own web process: Label Studio's webhooks never queue behind presses.
    webhook_port: int
    redis_port: int  # make run --celery: the Celery broker (not 6379: a system Redis may hold it)
    # The LLM that finds names and addresses for de-identification: its own endpoint, never the
    # pre-labeling one, and local unless its host is allowed by name. None: not configured.
    pii_llm: PiiLlmSettings | None = None
    # Keys PII_KEY replaced, while the rotate_pii_key pipeline re-encrypts what they wrote.
    pii_key_previous: tuple[str, ...] = field(default=(), repr=False)
    embed_runtime: str = "auto"  # EMBED_RUNTIME, one of EMBED_RUNTIMES (include.ml.embeddings.onnx)

    def require(self, name: str) -> str:
        """Return a configured string setting or fail naming its variable."""
        value = getattr(self, name)
        if value in (None, ""):
            variable = _VARIABLE_OF[name]
            raise SettingsError(variable, f"{_EXPECTED_OF[name]}; it is not set")
        return str(value)


@dataclass(frozen=True)
class PiiLlmSettings:
    """``PII_LLM_*``: where the de-identification LLM runs (it reads texts before they are
    de-identified, so it has its own setting and must be local unless allowed by name)."""

    url: str
    api: str  # "ollama" (/api/generate) or "openai" (/chat/completions)
    model: str
    api_key: str | None = field(repr=False)
    timeout: float


LOCAL_NAMES = ("localhost", "localhost.localdomain")


def is_local_host(host: str) -> bool:
    """Loopback, a private or link-local address, or localhost: the premises, not the internet."""
    import ipaddress

    if host.lower() in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name could resolve anywhere: allowed only by name
    return address.is_loopback or address.is_private or address.is_link_local


def _previous_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "PII_KEY_PREVIOUS") or ""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for key in keys:
        _fernet_key({"PII_KEY_PREVIOUS": key}, "PII_KEY_PREVIOUS")
    return keys


def _pii_llm(env: Mapping[str, str]) -> PiiLlmSettings | None:
    url = _http_url(env, "PII_LLM_URL")
    if url is None:
        return None
    host = urlparse(url).hostname or ""
    allowed = {h.strip().lower() for h in (_get(env, "PII_LLM_ALLOWED_HOSTS") or "").split(",") if h.strip()}
    if not is_local_host(host) and host.lower() not in allowed:
        raise SettingsError(
            "PII_LLM_URL",
            "an LLM server on this machine or a private network (it reads texts before their personal data is "
            "replaced); to send them to another host, name it in PII_LLM_ALLOWED_HOSTS",
            host,
        )
    api = _choice(env, "PII_LLM_API", ("ollama", "openai"), "ollama")
    return PiiLlmSettings(
        url=url,
        api=api,
        model=_get(env, "PII_LLM_MODEL") or "llama3.2:1b",
        api_key=_get(env, "PII_LLM_API_KEY"),
        timeout=_positive_float(env, "PII_LLM_TIMEOUT", 120.0),
    )


_VARIABLE_OF = {
    "database_url": "DATABASE_URL",
    "ls_url": "LS_URL",
    "ls_api_token": "LS_API_TOKEN",
    "secret_key": "SECRET_KEY",
    "ollama_base_url": "OLLAMA_BASE_URL",
    "openai_base_url": "OPENAI_BASE_URL",
    "airflow_api_password": "AIRFLOW_API_PASSWORD",
}
_EXPECTED_OF = {
    "database_url": "a PostgreSQL URL such as postgresql+psycopg://user:pw@host:5432/labelops",
    "ls_url": "the Label Studio base URL such as http://127.0.0.1:8081",
    "ls_api_token": "a Label Studio Personal Access Token (JWT) or legacy token",
    "secret_key": "a long random string (python -c 'import secrets; print(secrets.token_hex(32))')",
    "ollama_base_url": "the Ollama server URL such as http://127.0.0.1:11434",
    "openai_base_url": "an OpenAI-compatible base URL such as https://api.openai.com/v1",
    "airflow_api_password": "the password of the Airflow API user the web app triggers DAGs as",
}


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _http_url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = _get(env, name) or default
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(name, "an http:// or https:// URL", value)
    return value.rstrip("/")


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, "a number of seconds greater than 0", raw) from None
    if value <= 0:
        raise SettingsError(name, "a number of seconds greater than 0", raw)
    return value


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = _get(env, name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise SettingsError(name, "a positive integer id", raw)
    return int(raw)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(name, "a TCP port number", raw)
    return int(raw)


def _fernet_key(env: Mapping[str, str], name: str) -> str | None:
    raw = _get(env, name)
    if raw is None:
        return None
    import base64
    import binascii

    try:
        valid = len(base64.urlsafe_b64decode(raw.encode())) == 32
    except (ValueError, binascii.Error):
        valid = False
    if not valid:
        raise SettingsError(name, "a Fernet key: 32 url-safe base64-encoded bytes", "<not shown>")
    return raw


def _email(env: Mapping[str, str], name: str, default: str) -> str:
    value = _get(env, name) or default
    if "@" not in value or any(ch.isspace() for ch in value):
        raise SettingsError(name, "an email address", value)
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (_get(env, name) or default).lower()
    if value not in choices:
        raise SettingsError(name, " or ".join(choices), value)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (_get(env, name) or "").lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(name, "1 or 0 (true or false)", raw)


def _token_file(env: Mapping[str, str], name: str) -> str | None:
    """A secret read from the file a ``*_FILE`` variable names (Docker and Kubernetes secrets,
    compose's ``ls-token`` volume); None when the variable is unset."""
    path = _get(env, name)
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise SettingsError(name, "a readable file holding the token", f"{path} ({exc.strerror})") from None
    return token or None


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "DATABASE_URL")
    if raw is None:
        return None
    scheme = urlparse(raw).scheme
    if not scheme.startswith("postgresql"):
        raise SettingsError("DATABASE_URL", _EXPECTED_OF["database_url"], raw.split("@")[-1])
    return normalize_database_url(raw)


def database_url_only(env: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL alone, validated: what a migration needs, so a service that migrates before
    Label Studio's token exists (the compose file's first ``up``) is not refused over LS_URL.

    Raises:
        SettingsError: DATABASE_URL is missing or not a PostgreSQL URL.
    """
    url = _database_url(os.environ if env is None else env)
    if url is None:
        raise SettingsError("DATABASE_URL", f"{_EXPECTED_OF['database_url']}; it is not set")
    return url


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (what Airflow connections produce)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _labels(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "LABELS")
    if raw is None:
        return DEFAULT_LABELS
    labels = tuple(part.strip() for part in raw.split(",") if part.strip())
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise SettingsError("LABELS", "two or more distinct comma-separated labels, e.g. OK,NG", raw)
    for label in labels:
        if any(ch in label for ch in '<>"&'):
            raise SettingsError("LABELS", 'labels without <, >, " or &', raw)
    return labels


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate :class:`Settings` from ``env`` (default: ``os.environ``).

    Raises:
        SettingsError: a variable is malformed, or one that needs another is set alone.
    """
    env = os.environ if env is None else env
    home = Path(_get(env, "LABELOPS_HOME") or REPO_ROOT / ".labelops").resolve()
    ls_url = _http_url(env, "LS_URL")
    ls_token = _get(env, "LS_API_TOKEN") or _token_file(env, "LS_API_TOKEN_FILE")
    if ls_url and not ls_token:
        raise SettingsError("LS_API_TOKEN", "a token for LS_URL (Personal Access Token or legacy token)")
    secret_key = _get(env, "SECRET_KEY")
    if secret_key is not None and len(secret_key) < 16:
        raise SettingsError("SECRET_KEY", "at least 16 characters of random text", "<too short>")
    openai_key = _get(env, "OPENAI_API_KEY")
    airflow_api_url = _http_url(env, "AIRFLOW_API_URL", "http://127.0.0.1:8080") or ""
    webhook_url, webhook_secret = _http_url(env, "WEBHOOK_URL"), _get(env, "WEBHOOK_SECRET")
    if webhook_url and (webhook_secret is None or len(webhook_secret) < 16):
        shown = None if webhook_secret is None else "<too short>"
        raise SettingsError("WEBHOOK_SECRET", "16+ random characters that Label Studio sends to WEBHOOK_URL", shown)
    return Settings(
        home=home,
        database_url=_database_url(env),
        ls_url=ls_url,
        ls_api_token=ls_token,
        ls_project_id=_positive_int(env, "LS_PROJECT_ID"),
        labels=_labels(env),
        ls_timeout=_positive_float(env, "LS_TIMEOUT", 60.0),
        ls_write_concurrency=_positive_int(env, "LS_WRITE_CONCURRENCY") or 1,
        web_threads=_positive_int(env, "WEB_THREADS") or WEB_THREADS_DEFAULT,
        ollama_base_url=_http_url(env, "OLLAMA_BASE_URL"),
        ollama_model=_get(env, "OLLAMA_MODEL") or "llama3.2:1b",
        ollama_timeout=_positive_float(env, "OLLAMA_TIMEOUT", 120.0),
        openai_base_url=_http_url(env, "OPENAI_BASE_URL"),
        openai_api_key=openai_key,
        openai_model=_get(env, "OPENAI_MODEL") or "gpt-4o-mini",
        openai_embedding_model=_get(env, "OPENAI_EMBEDDING_MODEL") or "text-embedding-3-small",
        openai_timeout=_positive_float(env, "OPENAI_TIMEOUT", 120.0),
        secret_key=secret_key,
        pii_key=_fernet_key(env, "PII_KEY"),
        airflow_api_url=airflow_api_url,
        airflow_api_user=_get(env, "AIRFLOW_API_USER") or "webapp",
        airflow_api_password=_get(env, "AIRFLOW_API_PASSWORD"),
        ls_public_url=_http_url(env, "LS_PUBLIC_URL") or ls_url,
        ml_backend_url=_http_url(env, "ML_BACKEND_URL"),
        ml_backend_user=_get(env, "ML_BACKEND_USER"),
        ml_backend_password=_get(env, "ML_BACKEND_PASSWORD"),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        airflow_public_url=_http_url(env, "AIRFLOW_PUBLIC_URL") or airflow_api_url,
        cookie_secure=_flag(env, "COOKIE_SECURE"),
        ls_admin_email=_email(env, "LS_ADMIN_EMAIL", "admin@labelops.local"),
        ls_database=_choice(env, "LS_DATABASE", ("sqlite", "postgresql"), LS_DATABASE_DEFAULT),
        pg_port=_port(env, "PG_PORT", 54329),
        ls_port=_port(env, "LS_PORT", 8081),
        airflow_port=_port(env, "AIRFLOW_PORT", 8080),
        webapp_port=_port(env, "WEBAPP_PORT", 5000),
        webhook_port=_port(env, "WEBHOOK_PORT", 5001),
        redis_port=_port(env, "REDIS_PORT", 56379),
        pii_llm=_pii_llm(env),
        pii_key_previous=_previous_keys(env),
        embed_runtime=_choice(env, "EMBED_RUNTIME", EMBED_RUNTIMES, "auto"),
    )

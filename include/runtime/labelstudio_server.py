"""A local Label Studio server run from its own virtualenv (``.venv-ls``).

Used by ``make run`` when LS_URL is not set, and by the test session. Label Studio pins its own
Django stack, so it never shares the platform's environment: this module only starts its
executables and talks to it over HTTP.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from include.config import REPO_ROOT

log = logging.getLogger(__name__)

DEFAULT_VENV = REPO_ROOT / ".venv-ls"

# Label Studio reports errors to Sentry, collects usage analytics and asks PyPI for new versions
# by default. A self-hosted platform that holds personal data sends nothing out: these bare
# names (Label Studio's get_env also reads them unprefixed, and an empty DSN counts as set)
# switch all three off. docker-compose.yaml sets the same.
PRIVACY_ENV = {
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
}

# What Label Studio inherits from the launcher: the system's basics, nothing of the platform's.
# An allow-list, not a deny-list: the launcher's environment holds PII_KEY, SECRET_KEY,
# OPENAI_API_KEY and database passwords, which a Label Studio process (and its logs, and its
# error pages) has no business seeing. Locale variables (LC_*) pass too.
SYSTEM_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip

# Label Studio refuses webhook and ML-backend URLs on private and loopback networks (SSRF
# protection). The embedded platform lives on 127.0.0.1, so loopback is allowed and every other
# default range stays banned (Label Studio's default list minus 127.0.0.0/8 and IPv6).
LOOPBACK_ML_ENV = {
    "USE_DEFAULT_BANNED_SUBNETS": "false",
    "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(
        (
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "233.252.0.0/24",
            "240.0.0.0/4",
            "255.255.255.255/32",
        )
    ),
}


# Label Studio Community ships its bulk prediction import behind an "off" feature flag: the
# default (legacy) path loads every task id of the project to validate a chunk and recounts
# every task of the project after it, so each 1,000-prediction chunk costs O(project) and
# pre-labeling 100k tasks crawled at ~90 predictions/s (bench/prelabel.py). Its own
# memory-efficient path validates and recounts only the chunk's tasks. Label Studio reads
# feature flags from same-named environment variables first; docker-compose.yaml sets the same.
PERFORMANCE_ENV = {
    "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short": "true",
}


@dataclass(frozen=True)
class PostgresDatabase:
    """A PostgreSQL database for Label Studio instead of its default SQLite file.

    Label Studio recommends PostgreSQL for production; it reads these as its ``POSTGRE_*``
    settings. The database must exist; Label Studio creates its tables on first start.
    """

    host: str
    port: int
    name: str
    user: str
    password: str = field(default="", repr=False)
    # pgserver's PostgreSQL ships without contrib, so pg_trgm and btree_gin are missing; Label
    # Studio's own SKIP_*_EXTENSION switches then leave out the two GIN indexes that need them
    # (they speed up Data Manager text filters on annotation results, which the platform never uses).
    without_contrib: bool = False

    @classmethod
    def from_url(cls, url: str, name: str | None = None, *, without_contrib: bool = False) -> PostgresDatabase:
        """From a SQLAlchemy-style URL; ``name`` replaces the URL's database (same server)."""
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            name=name or parsed.database or "labelstudio",
            user=parsed.username or "postgres",
            password=parsed.password or "",
            without_contrib=without_contrib,
        )

    def env(self) -> dict[str, str]:
        skip = {"SKIP_TRIGRAM_EXTENSION": "full", "SKIP_BTREE_GIN_EXTENSION": "full"} if self.without_contrib else {}
        return skip | {
            "DJANGO_DB": "postgresql",
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
        }

    def has_user(self, email: str) -> bool:
        """Whether Label Studio's tables and ``email``'s account are there (a finished init)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None, dbname=self.name
        ) as conn:
            if conn.execute("SELECT to_regclass('public.htx_user')").fetchone() in (None, (None,)):
                return False
            return conn.execute("SELECT 1 FROM htx_user WHERE email = %s", (email,)).fetchone() is not None


class LabelStudioServer:
    """Initialise (once), start, mint a Personal Access Token for, and stop a Label Studio.

    Its data lives in SQLite under ``data_dir`` unless ``database`` names a PostgreSQL database
    (uploaded files and logs stay in ``data_dir`` either way).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        admin_email: str = "admin@labelops.local",
        admin_password: str = "labelops-admin",
        venv: Path = DEFAULT_VENV,
        host: str = "127.0.0.1",
        database: PostgresDatabase | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.database = database
        self.port = port
        self.host = host
        self.admin_email = admin_email
        self.admin_password = admin_password
        self.venv = Path(venv)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "label-studio.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in SYSTEM_ENV or k.startswith("LC_")}
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            PYTHONPATH="",
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            **PRIVACY_ENV,
            **LOOPBACK_ML_ENV,
            **PERFORMANCE_ENV,
        )
        if self.database is not None:
            env.update(self.database.env())
        return env

    def _exe(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise RuntimeError(
                f"Label Studio is not installed in {self.venv}: run `make venv` "
                "(it creates .venv-ls from requirements-labelstudio.txt) or set LS_URL to an existing server"
            )
        return str(path)

    def is_initialized(self) -> bool:
        if self.database is not None:
            return self.database.has_user(self.admin_email)
        return (self.data_dir / "label_studio.sqlite3").exists()

    def ensure_initialized(self) -> None:
        """Create the database and the admin user the first time (about 45 s)."""
        if self.is_initialized():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log.info("initialising Label Studio in %s (first run only, about a minute)", self.data_dir)
        result = subprocess.run(
            [
                self._exe("label-studio"),
                "init",
                "--username",
                self.admin_email,
                "--password",
                self.admin_password,
                "--no-browser",
            ],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0 or not self.is_initialized():
            raise RuntimeError(f"label-studio init failed: {result.stderr[-2000:] or result.stdout[-2000:]}")

    def health(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    def start(self, timeout: float = 120) -> None:
        """Start the server in its own process group and wait for ``/health``."""
        self.ensure_initialized()
        if self.health():
            raise RuntimeError(
                f"something already answers on {self.url}; set LS_PORT to a free port or LS_URL to use it"
            )
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        out = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [
                self._exe("label-studio"),
                "start",
                "--no-browser",
                "--internal-host",
                self.host,
                "--port",
                str(self.port),
            ],
            env=self._env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 120) -> None:
        if self.process is None:
            raise RuntimeError("Label Studio was not started")
        deadline = time.monotonic() + timeout
        while not self.health():
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}; see {self.log_file}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Label Studio did not become healthy in {timeout:.0f} s; see {self.log_file}")
            time.sleep(0.5)
        log.info("Label Studio is up at %s", self.url)

    def mint_token(self) -> str:
        """A Personal Access Token for the admin, from Label Studio's own Python (about 4 s), by
        the script docker compose's ``ls-token`` service runs too (include/runtime/ls_token.py)."""
        result = subprocess.run(
            [self._exe("python"), str(Path(__file__).with_name("ls_token.py")), self.admin_email, "-"],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        for line in result.stdout.splitlines():
            if line.startswith("PAT="):
                return line[4:].strip()
        raise RuntimeError(f"could not mint a Label Studio token: {result.stderr[-2000:]}")

    def stop(self, timeout: float = 20) -> None:
        """Stop the whole process group (Label Studio starts worker children)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass

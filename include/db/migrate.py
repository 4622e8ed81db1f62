"""Run Alembic migrations programmatically: ``python -m include.db.migrate [upgrade|downgrade REV]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

from include.config import database_url_only, normalize_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at this package's migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: escape % in passwords.
    cfg.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def main() -> None:
    parser = argparse.ArgumentParser(description="Migrate the LabelOps platform database (DATABASE_URL).")
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", default="head")
    args = parser.parse_args()
    url = database_url_only()  # only the database: the other settings may not exist yet
    if args.action == "upgrade":
        upgrade(url, args.revision)
    elif args.action == "downgrade":
        downgrade(url, args.revision)
    else:
        command.current(alembic_config(url), verbose=True)


if __name__ == "__main__":
    main()

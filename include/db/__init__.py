"""Platform database: models (one DeclarativeBase), sessions, Alembic migrations."""

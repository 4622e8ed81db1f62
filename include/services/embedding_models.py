"""Embedding models: which ones a person can pick (the offline default, the configured remote
model, every model that has vectors), and the backend of each, fine-tuned encoders included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from include.db.models import EmbeddingModel
from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder, backend_for
from include.ml.embeddings.names import DEFAULT_MODEL


def embedding_model_names(session: Session, openai_embedding_model: str | None = None) -> list[str]:
    """Names for the embedding-model picker, the default first.

    ``openai_embedding_model`` (OPENAI_EMBEDDING_MODEL, when an OpenAI-compatible server is
    configured) is offered as ``openai:<model>``.
    """
    names = [DEFAULT_MODEL]
    if openai_embedding_model:
        names.append(f"openai:{openai_embedding_model}")
    for name in session.scalars(select(EmbeddingModel.name).order_by(EmbeddingModel.name)):
        if name not in names:
            names.append(str(name))
    return names


@dataclass(frozen=True)
class StoredWeights:
    """The registry as the source of fine-tuned encoders' weights (``ml.embeddings.WeightsSource``).

    Reads through short sessions of its own: an encoder loads its weights lazily, on its first
    ``embed``, outside any transaction of the caller, and only once per machine.
    """

    db_url: str

    def sha256(self, name: str) -> str | None:
        with session_scope(self.db_url) as session:
            return session.scalar(select(EmbeddingModel.artifact_sha256).where(EmbeddingModel.name == name))

    def artifact(self, name: str) -> bytes | None:
        with session_scope(self.db_url) as session:
            row = session.scalar(
                select(EmbeddingModel).options(undefer(EmbeddingModel.artifact)).where(EmbeddingModel.name == name)
            )
            return bytes(row.artifact) if row is not None and row.artifact else None


def embedder_for(name: str, db_url: str, settings: Any = None) -> Embedder:
    """The embedding backend for a registry name; fine-tuned encoders load from this database."""
    return backend_for(name, settings, weights=StoredWeights(db_url))


def session_url(session: Session) -> str:
    """The database URL a session is bound to (for a backend that reads on its own later)."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)

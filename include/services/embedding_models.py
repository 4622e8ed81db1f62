"""Which embedding models a person can pick: the offline default, the configured remote model,
and every model that already has vectors."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import EmbeddingModel
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

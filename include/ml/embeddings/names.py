"""Embedding model names: which a pipeline accepts, and the default.

Kept apart from the backends so DAG files, forms and API checks can validate a name without
importing numpy or a model. ``backends.backend_for`` turns a name into a backend.
"""

from __future__ import annotations

import re

from include.params import ParamSpec

DEFAULT_MODEL = "all-MiniLM-L6-v2"
LOCAL_PREFIX = "st:"  # a local sentence-transformers model directory
FINETUNED_PREFIX = "ft:"  # an encoder fine-tuned by the platform, its weights in the database
REMOTE_PREFIXES = ("openai:", "ollama:")
# The offline default, a local directory, a fine-tuned encoder, or a model on a configured
# OpenAI-compatible or Ollama server.
NAME_PATTERN = re.escape(DEFAULT_MODEL) + r"|st:\S.*|ft:[\w.-]+|openai:\S+|ollama:\S+"

EMBEDDING_MODEL = ParamSpec(
    "embedding_model",
    "Embedding model",
    "str",
    DEFAULT_MODEL,
    help=f"is {DEFAULT_MODEL}, st:<local model directory>, ft:<fine-tuned encoder>, openai:<model> or ollama:<model>",
    pattern=NAME_PATTERN,
)


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None

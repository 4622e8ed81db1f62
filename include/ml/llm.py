"""Chat and embedding calls through the ``openai`` client (OpenAI, vLLM, Ollama's ``/v1``).

Why the client rather than hand-written requests: it retries 429s and 5xx with exponential
backoff (honouring ``Retry-After``), reuses connections, and speaks the structured-output and
logprobs parameters every compatible server accepts. One client per server and key is kept for
the process.

Confidence: the answer's ``label`` is constrained to the dataset's labels by a JSON schema. Where
the server returns logprobs, the label's probability is read from the token that starts the
label value (its top alternatives give the other labels' share) instead of the number the model
states; otherwise the stated confidence is used and the suggestion is marked self-reported.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from include.ml.http import BackendError

MAX_RETRIES = 4
TOP_LOGPROBS = 5
_CLIENTS: dict[tuple[str, str | None, float], Any] = {}
_LOCK = threading.Lock()


def client(base_url: str, api_key: str | None, timeout: float) -> Any:
    """The process's ``openai.OpenAI`` for this server (retries with backoff, pooled connections)."""
    from openai import OpenAI

    key = (base_url, api_key, timeout)
    with _LOCK:
        if key not in _CLIENTS:
            # Local servers (Ollama, vLLM) take any key; the client insists on one.
            _CLIENTS[key] = OpenAI(
                base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=MAX_RETRIES
            )
        return _CLIENTS[key]


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """Structured output: ``label`` must be one of the dataset's labels, ``confidence`` a number."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "label",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": list(labels)},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["label", "confidence"],
                "additionalProperties": False,
            },
        },
    }


@dataclass(frozen=True)
class ChatAnswer:
    content: str | None
    label_probs: dict[str, float] | None  # from logprobs; None when the server gave none usable


@contextmanager
def _as_backend_errors(llm: Any) -> Iterator[None]:
    """The client's errors (after its retries) as BackendError naming the server and what happened."""
    import openai

    try:
        yield
    except openai.AuthenticationError as exc:
        raise BackendError(f"{llm.base_url} refused the API key ({exc.status_code})") from exc
    except openai.APITimeoutError as exc:
        raise BackendError(f"{llm.base_url} did not answer within {llm.timeout} s") from exc
    except openai.APIConnectionError as exc:
        raise BackendError(f"cannot reach {llm.base_url}: {exc.__class__.__name__}") from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"{llm.base_url} answered {exc.status_code} after {llm.max_retries} retries") from exc
    except openai.APIError as exc:
        raise BackendError(f"{llm.base_url}: {exc}") from exc


def _call(llm: Any, **kwargs: Any) -> Any:
    """``chat.completions.create`` with the client's retries; every failure as a BackendError."""
    with _as_backend_errors(llm):
        return llm.chat.completions.create(**kwargs)


def ask_schema(llm: Any, model: str, system: str, prompt: str, name: str, schema: dict[str, Any]) -> str | None:
    """An answer constrained to a JSON schema (structured output), e.g. the personal-data
    recognizer's entity list; raises BackendError naming the server when every retry failed."""
    response = _call(
        llm,
        model=model,
        temperature=0,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        response_format={"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
    )
    try:
        return response.choices[0].message.content
    except (IndexError, AttributeError, TypeError):
        return None


def ask_label(
    llm: Any, model: str, system: str, prompt: str, labels: Sequence[str], *, logprobs: bool = True
) -> ChatAnswer:
    """One labeling question; raises BackendError naming the server when every retry failed."""
    extra: dict[str, Any] = {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if logprobs else {}
    response = _call(
        llm,
        model=model,
        temperature=0,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        response_format=label_schema(labels),
        **extra,
    )
    try:
        choice = response.choices[0]
    except (IndexError, AttributeError, TypeError):
        return ChatAnswer(None, None)
    content = getattr(choice.message, "content", None)
    tokens = getattr(getattr(choice, "logprobs", None), "content", None)
    return ChatAnswer(content, label_probs(content, tokens, labels) if tokens else None)


def label_probs(content: str | None, tokens: Sequence[Any], labels: Sequence[str]) -> dict[str, float] | None:
    """Each label's probability from the token that starts the ``label`` value, or None.

    The value's first token and its top alternatives are matched to the labels they begin
    (``"N"`` begins ``NG``); the matched mass is renormalised over the labels. None when the
    value is not found, when two labels share that first token (ambiguous), or when the chosen
    label gets no mass.
    """
    if not content:
        return None
    marker = content.find('"label"')
    if marker < 0:
        return None
    start = content.find('"', content.find(":", marker) + 1) + 1  # first character of the value
    if start <= 0:
        return None
    offset = 0
    for token in tokens:
        text = str(getattr(token, "token", ""))
        if offset <= start < offset + len(text) or (offset >= start and text.strip(' "')):
            return _distribution(token, labels)
        offset += len(text)
    return None


def _distribution(token: Any, labels: Sequence[str]) -> dict[str, float] | None:
    options = [(str(token.token), float(token.logprob))]
    options += [(str(t.token), float(t.logprob)) for t in (getattr(token, "top_logprobs", None) or [])]
    mass: dict[str, float] = {}
    for text, logprob in options:
        piece = text.strip().lstrip('"')
        if not piece:
            continue
        matches = [label for label in labels if label.startswith(piece)]
        if len(matches) > 1:
            return None  # the first token does not tell the labels apart
        if matches:
            mass[matches[0]] = max(mass.get(matches[0], 0.0), math.exp(logprob))
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: mass.get(label, 0.0) / total for label in labels}


def embed(llm: Any, model: str, texts: Sequence[str]) -> list[list[float]]:
    """Embeddings in input order (servers may answer in any order)."""
    with _as_backend_errors(llm):
        # Floats, not the client's default base64: not every compatible server encodes.
        response = llm.embeddings.create(model=model, input=list(texts), encoding_format="float")
    return [list(d.embedding) for d in sorted(response.data, key=lambda d: d.index)]

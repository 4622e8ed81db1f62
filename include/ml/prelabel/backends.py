"""Pre-labeling backends: the promoted classifier, embedding similarity (cold start), and LLMs.

Every backend returns, per text, a :class:`Suggestion` (label, confidence, class probabilities)
or ``None`` when the model's answer could not be used. LLM answers are asked for as JSON; a
malformed answer is counted, never fatal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.ml.http import BackendError, post_json
from include.ml.llm import ChatAnswer, ask_label, client
from include.ml.training.model import TrainedHead
from include.params import ParamSpec

log = logging.getLogger(__name__)

BACKENDS = ("auto", "classifier", "similarity", "ollama", "openai")
BACKEND = ParamSpec(
    "backend",
    "Backend",
    "choice",
    "auto",
    choices=BACKENDS,
    help="auto: the promoted classifier, else embedding similarity to the label descriptions",
)


@dataclass
class Suggestion:
    label: str
    confidence: float
    probs: dict[str, float]
    raw: Any = None
    # An LLM's own statement of its confidence, not a measured probability (no logprobs).
    self_reported: bool = False


@dataclass
class PrelabelStats:
    predicted: int = 0
    malformed: int = 0  # answers that were not the JSON asked for
    failed: int = 0  # timeouts and server errors
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, detail: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(detail[:200])


def _suggestion_from_probs(labels: Sequence[str], probs: np.ndarray) -> Suggestion:
    best = int(np.argmax(probs))
    return Suggestion(
        labels[best], float(probs[best]), {lbl: round(float(p), 6) for lbl, p in zip(labels, probs, strict=True)}
    )


@dataclass
class ClassifierPrelabeler:
    """The dataset's promoted classifier head over stored embeddings."""

    head: TrainedHead
    model_version: str
    needs_vectors: bool = True

    @property
    def labels(self) -> list[str]:
        return self.head.labels

    def predict(
        self, texts: Sequence[str], vectors: np.ndarray | None, stats: PrelabelStats
    ) -> list[Suggestion | None]:
        assert vectors is not None
        probs = self.head.predict_proba(vectors)
        stats.predicted += len(texts)
        return [_suggestion_from_probs(self.labels, row) for row in probs]


@dataclass
class SimilarityPrelabeler:
    """Cold start without labels: cosine similarity of each text to short label descriptions."""

    labels: list[str]
    description_vectors: np.ndarray  # (k, d), unit length
    model_version: str
    temperature: float = 0.05
    needs_vectors: bool = True

    @classmethod
    def build(
        cls,
        labels: Sequence[str],
        embed: Callable[[list[str]], np.ndarray],
        embedding_name: str,
        descriptions: dict[str, str] | None = None,
    ) -> SimilarityPrelabeler:
        texts = [(descriptions or {}).get(label) or label for label in labels]
        return cls(list(labels), embed(texts), model_version=f"similarity-{embedding_name}")

    def predict(
        self, texts: Sequence[str], vectors: np.ndarray | None, stats: PrelabelStats
    ) -> list[Suggestion | None]:
        assert vectors is not None
        logits = (vectors @ self.description_vectors.T) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        stats.predicted += len(texts)
        return [_suggestion_from_probs(self.labels, row) for row in probs]


def build_prompt(
    text: str, labels: Sequence[str], descriptions: dict[str, str] | None = None, guidelines: str | None = None
) -> str:
    """The pre-labeling prompt: the annotators' own guidelines (when the dataset has them), the
    labels with what they mean, the answer's form, then the text."""
    described = "\n".join(f"- {lbl}: {(descriptions or {}).get(lbl) or lbl}" for lbl in labels)
    rules = f"Labeling guidelines (the ones the annotators follow):\n{guidelines}\n\n" if guidelines else ""
    return (
        f"{rules}Classify the text into exactly one of these labels:\n{described}\n\n"
        'Answer with JSON only, like {"label": "' + labels[0] + '", "confidence": 0.8}, where confidence is '
        "your probability (0 to 1) that the label is right.\n\n"
        f'Text: """{text}"""'
    )


def check_answer(answer: Any, labels: Sequence[str]) -> tuple[Suggestion | None, str]:
    """The model's answer as a Suggestion, or why it breaks the contract: ``not_json`` (no JSON
    object), ``label_not_in_set`` or ``bad_confidence`` (missing, or not a number in [0, 1])."""
    if answer is None:
        return None, "not_json"
    if isinstance(answer, str):
        try:
            answer = json.loads(answer.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
        except (json.JSONDecodeError, ValueError):
            return None, "not_json"
    if not isinstance(answer, dict):
        return None, "not_json"
    raw_label = answer.get("label")
    by_lower = {lbl.lower(): lbl for lbl in labels}
    label = by_lower.get(raw_label.strip().lower()) if isinstance(raw_label, str) else None
    if label is None:
        return None, "label_not_in_set"
    confidence = answer.get("confidence", answer.get("score"))
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= float(confidence) <= 1:
        return None, "bad_confidence"
    # A stated confidence below 1/K would make another label the likelier one: the answer names
    # its label, so its probability is floored at the uniform share.
    confidence = max(float(confidence), 1.0 / len(labels))
    rest = (1.0 - confidence) / (len(labels) - 1)
    probs = {lbl: (confidence if lbl == label else rest) for lbl in labels}
    return Suggestion(label, confidence, probs, raw=answer, self_reported=True), ""


def read_answer(answer: Any, labels: Sequence[str]) -> tuple[Suggestion | None, str]:
    """Like :func:`check_answer`, taking the label's probability from logprobs when the answer has them."""
    if not isinstance(answer, ChatAnswer):
        return check_answer(answer, labels)
    suggestion, problem = check_answer(answer.content, labels)
    if suggestion is None or not answer.label_probs or answer.label_probs.get(suggestion.label, 0.0) <= 0:
        return suggestion, problem
    probs = {lbl: round(float(p), 6) for lbl, p in answer.label_probs.items()}
    return Suggestion(suggestion.label, probs[suggestion.label], probs, raw=suggestion.raw), problem


def parse_llm_answer(answer: Any, labels: Sequence[str]) -> Suggestion | None:
    """A Suggestion from the model's JSON answer, or None if it is not the JSON asked for."""
    return read_answer(answer, labels)[0]


@dataclass(frozen=True)
class Answer:
    suggestion: Suggestion | None
    problem: str  # "" when the answer kept the contract; else not_json, label_not_in_set, bad_confidence, failed
    seconds: float
    raw: str


@dataclass
class LlmPrelabeler:
    """Shared batching, concurrency and error accounting for the LLM backends."""

    labels: list[str]
    model_version: str
    ask: Callable[[str], Any]  # prompt -> the model's answer (a JSON string or object)
    concurrency: int = 4
    descriptions: dict[str, str] | None = None
    needs_vectors: bool = False
    guidelines: str | None = None  # include.services.guidelines.prompt_text

    def _one(self, text: str) -> tuple[Suggestion | None, str | None, str]:
        try:
            answer = self.ask(build_prompt(text, self.labels, self.descriptions, self.guidelines))
        except BackendError as exc:
            return None, "failed", str(exc)
        suggestion = parse_llm_answer(answer, self.labels)
        if suggestion is None:
            shown = answer.content if isinstance(answer, ChatAnswer) else answer
            return None, "malformed", f"unusable answer: {str(shown)[:120]}"
        return suggestion, None, ""

    def probe(self, texts: Sequence[str]) -> list[Answer]:
        """Each text's answer with how the contract held and how long it took (the baseline probe)."""

        def one(text: str) -> Answer:
            started = time.perf_counter()
            try:
                raw = self.ask(build_prompt(text, self.labels, self.descriptions, self.guidelines))
            except BackendError as exc:
                return Answer(None, "failed", time.perf_counter() - started, str(exc)[:200])
            suggestion, problem = read_answer(raw, self.labels)
            shown = raw.content if isinstance(raw, ChatAnswer) else raw
            return Answer(suggestion, problem, time.perf_counter() - started, str(shown)[:200])

        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(one, texts))

    def predict(
        self, texts: Sequence[str], vectors: np.ndarray | None, stats: PrelabelStats
    ) -> list[Suggestion | None]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            outcomes = list(pool.map(self._one, texts))
        results: list[Suggestion | None] = []
        for suggestion, problem, detail in outcomes:
            if problem:
                stats.note(problem, detail)
            else:
                stats.predicted += 1
            results.append(suggestion)
        if texts and all(problem == "failed" for _, problem, _ in outcomes):
            raise BackendError(f"every request of the batch failed, e.g. {outcomes[0][2]}")
        return results


def ollama_prelabeler(
    base_url: str,
    model: str,
    labels: list[str],
    *,
    timeout: float,
    concurrency: int = 4,
    descriptions: dict[str, str] | None = None,
) -> LlmPrelabeler:
    """The seed's way: ``POST /api/generate`` with ``format: json`` and no streaming."""

    def ask(prompt: str) -> Any:
        body = post_json(
            f"{base_url}/api/generate",
            {"model": model, "prompt": prompt, "stream": False, "format": "json", "options": {"temperature": 0}},
            timeout=timeout,
        )
        if not isinstance(body, dict) or "response" not in body:
            return None
        return body["response"]

    return LlmPrelabeler(labels, f"ollama-{model}", ask, concurrency, descriptions)


def openai_prelabeler(
    base_url: str,
    model: str,
    labels: list[str],
    *,
    api_key: str | None,
    timeout: float,
    concurrency: int = 4,
    descriptions: dict[str, str] | None = None,
) -> LlmPrelabeler:
    """Any OpenAI-compatible chat endpoint through the ``openai`` client (include.ml.llm): the
    label constrained to the dataset's by a JSON schema, its probability from logprobs where given."""
    llm = client(base_url, api_key, timeout)

    def ask(prompt: str) -> ChatAnswer:
        return ask_label(llm, model, "You label data. Answer with a single JSON object.", prompt, labels)

    return LlmPrelabeler(labels, f"openai-{model}", ask, concurrency, descriptions)


LLM_BACKENDS = ("openai", "ollama")


def llm_prelabeler(
    settings: Any,
    name: str,
    labels: list[str],
    descriptions: dict[str, str] | None,
    guidelines: str | None = None,
) -> LlmPrelabeler:
    """The configured LLM backend (``openai`` or ``ollama``) for these labels, prompted with the
    dataset's guidelines when it has them.

    Raises:
        SettingsError: the backend's server is not configured (the message names the variable).
    """
    prelabeler = _llm_backend(settings, name, labels, descriptions)
    prelabeler.guidelines = guidelines
    return prelabeler


def _llm_backend(settings: Any, name: str, labels: list[str], descriptions: dict[str, str] | None) -> LlmPrelabeler:
    if name == "ollama":
        return ollama_prelabeler(
            settings.require("ollama_base_url"),
            settings.ollama_model,
            labels,
            timeout=settings.ollama_timeout,
            descriptions=descriptions,
        )
    if name == "openai":
        return openai_prelabeler(
            settings.require("openai_base_url"),
            settings.openai_model,
            labels,
            api_key=settings.openai_api_key,
            timeout=settings.openai_timeout,
            descriptions=descriptions,
        )
    raise ValueError(f"LLM backend must be one of {LLM_BACKENDS}, not {name!r}")

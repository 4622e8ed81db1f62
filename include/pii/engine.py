"""De-identify texts with Presidio, offline: blank spaCy pipelines (no model download), the
recognizers in ``include.pii.recognizers``, and ``presidio-anonymizer`` applying a policy's
operator per entity.

Operators: ``placeholder`` (``<PHONE_1>``; the same value gets the same number within a text),
``mask`` (all but the last four characters), ``hash`` (a keyed HMAC, so equal values match across
texts without revealing them) and ``encrypt`` (reversible with the key). Every replacement is
returned with its original so the caller can store the mapping, encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.pii.entities import OPERATORS, STRUCTURED
from include.pii.llm import LlmUnusable
from include.pii.mapping import restore
from include.pii.recognizers import LANGUAGES, build

log = logging.getLogger(__name__)

_HAN = re.compile(r"[\u3400-\u9fff]")
# Full-width ASCII (１３８…, ＠) as typed with Chinese input methods, read as ASCII, one for one.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_LOCK = threading.Lock()
_ENGINES: dict[str, Any] = {}


class PiiError(ValueError):
    """A de-identification request that cannot be served; the message says why."""


def _blank_pipelines() -> dict[str, Path]:
    """Blank spaCy pipelines on disk, loaded by path: Presidio then downloads nothing."""
    import spacy

    root = Path(tempfile.gettempdir()) / f"labelops-spacy-{spacy.__version__}"
    paths = {lang: root / lang for lang in LANGUAGES}
    for lang, path in paths.items():
        if not (path / "config.cfg").exists():
            root.mkdir(parents=True, exist_ok=True)
            spacy.blank(lang).to_disk(path)
    return paths


def analyzer() -> Any:
    """The process's AnalyzerEngine with the offline recognizers (built once; about a second).

    The LLM recognizer is not registered in it: it differs per call (its endpoint, its
    settings), and is asked beside the engine, after the offline recognizers (see
    :func:`_find`)."""
    key = "patterns"
    with _LOCK:
        if key not in _ENGINES:
            _offline_tldextract()
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import SpacyNlpEngine

            engine = SpacyNlpEngine(
                models=[{"lang_code": lang, "model_name": str(p)} for lang, p in _blank_pipelines().items()]
            )
            engine.load()
            registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
            for lang in LANGUAGES:
                for recognizer in build(lang):
                    registry.add_recognizer(recognizer)
            _ENGINES[key] = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=list(LANGUAGES))
        return _ENGINES[key]


def _offline_tldextract() -> None:
    """tldextract (a Presidio dependency) downloads the public suffix list on first use: never."""
    try:
        import tldextract

        tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    except (ImportError, AttributeError):  # not imported by our recognizers anyway
        pass


def language_of(text: str, locale: str) -> str:
    if locale in LANGUAGES:
        return locale
    return "zh" if _HAN.search(text) else "en"


@dataclass(frozen=True)
class Replacement:
    entity: str
    start: int  # in the de-identified text
    end: int
    original: str
    replacement: str


@dataclass
class Deidentified:
    text: str
    replacements: list[Replacement] = field(default_factory=list)
    # Why this text could not be de-identified (the LLM recognizer failed closed): ``text`` is
    # then the original, never to be stored or shown as de-identified.
    held: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.replacements)


class Operators:
    """Turns an original value into its replacement, by the policy's operator for its entity."""

    def __init__(self, policy: dict[str, str], key: bytes | None, salt: str = "") -> None:
        if any(op not in OPERATORS for op in policy.values()):
            raise PiiError(f"an operator must be one of {', '.join(OPERATORS)}")
        if key is None and any(op in ("hash", "encrypt") for op in policy.values()):
            raise PiiError(
                "hash and encrypt need PII_KEY (a Fernet key: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        self.policy = policy
        self.key = key
        self.salt = salt

    def apply(self, entity: str, value: str, seen: dict[tuple[str, str], str]) -> str:
        if (entity, value) in seen:
            return seen[(entity, value)]
        op = self.policy[entity]
        if op == "placeholder":
            n = 1 + sum(1 for e, _ in seen if e == entity)
            out = f"<{entity}_{n}>"
        elif op == "mask":
            keep = 4 if len(value) > 6 else 0
            out = "*" * (len(value) - keep) + value[len(value) - keep :]
        elif op == "hash":
            digest = hmac.new(self.key or b"", f"{self.salt}{entity}:{value}".encode(), hashlib.sha256).digest()
            out = f"<{entity}:{base64.b32encode(digest[:6]).decode().lower().rstrip('=')}>"
        else:
            from cryptography.fernet import Fernet

            out = f"<{entity}:{Fernet(self.key or b'').encrypt(value.encode()).decode()}>"
        seen[(entity, value)] = out
        return out


def deidentify(
    texts: list[str],
    policy: dict[str, str],
    *,
    key: bytes | None,
    locale: str = "auto",
    salt: str = "",
    score_threshold: float = 0.5,
    llm_recognizer: Any = None,
) -> list[Deidentified]:
    """De-identify each text by ``policy`` (entity -> operator); entities not named stay as they are.

    Raises:
        PiiError: an unknown entity or operator, or hash/encrypt without a key.
    """
    unknown = [
        e for e in policy if e not in STRUCTURED and not (llm_recognizer is not None and e in ("PERSON", "ADDRESS"))
    ]
    if unknown:
        raise PiiError(
            f"cannot recognise {', '.join(unknown)}"
            + (" without the LLM recognizer" if set(unknown) <= {"PERSON", "ADDRESS"} else "")
        )
    operators = Operators(policy, key, salt)
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig

    engine = analyzer()
    anonymizer = AnonymizerEngine()
    out = []
    for text in texts:
        if not text:
            out.append(Deidentified(text))
            continue
        try:
            found = _find(engine, text, locale, list(policy), score_threshold, llm_recognizer)
        except LlmUnusable as exc:
            out.append(Deidentified(text, held=str(exc)))
            continue
        if not found:
            out.append(Deidentified(text))
            continue
        found = _without_overlaps(found)
        seen: dict[tuple[str, str], str] = {}
        for result in sorted(found, key=lambda r: (r.start, -r.end)):  # numbered in reading order
            operators.apply(result.entity_type, text[result.start : result.end], seen)
        # Every value's replacement is already in ``seen``: the anonymizer only writes them in.
        configs = {
            entity: OperatorConfig("custom", {"lambda": lambda value, entity=entity, seen=seen: seen[(entity, value)]})
            for entity in policy
        }
        result = anonymizer.anonymize(text=text, analyzer_results=found, operators=configs)
        replacements = _by_span(text, found, sorted(result.items, key=lambda i: i.start))
        out.append(Deidentified(result.text, replacements))
    return out


def _find(
    engine: Any, text: str, locale: str, entities: list[str], score_threshold: float, llm_recognizer: Any
) -> list[Any]:
    """What the offline recognizers find, then the LLM recognizer's names and addresses.

    Raises:
        LlmUnusable: the LLM recognizer failed closed for this text.
    """
    language = language_of(text, locale)
    plain = text.translate(_HALF_WIDTH)  # same length: spans stay valid for the original text
    found = list(engine.analyze(text=plain, language=language, entities=entities, score_threshold=score_threshold))
    if llm_recognizer is not None:
        asked = llm_recognizer.for_language(language).analyze(text, entities)
        found.extend(r for r in asked if r.score >= score_threshold)
    return found


def _without_overlaps(found: list[Any]) -> list[Any]:
    """The results to replace, none overlapping another: the most certain first, then the
    longest. Resolved here rather than by the anonymizer, so each replacement maps back to
    exactly one result (see :func:`_by_span`)."""
    kept: list[Any] = []
    for r in sorted(found, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


def _by_span(text: str, found: list[Any], items: list[Any]) -> list[Replacement]:
    """Each replacement with the original at its own span.

    Keyed by position, not by the replacement text: two numbers with the same mask (13800001234
    and 13900001234 both become ``*******1234``) keep their own originals. The anonymizer's
    items are in the output's coordinates; walking them in order, the shift so far maps each
    one back to the analyzer result it came from.
    """
    by_start = {(r.start, r.entity_type): r for r in found}
    out, shift = [], 0
    for item in items:
        source = by_start.get((item.start - shift, item.entity_type))
        if source is None:  # cannot happen with results that do not overlap: fail closed if it does
            raise PiiError("the anonymizer's output does not line up with what was found")
        original = text[source.start : source.end]
        out.append(Replacement(item.entity_type, item.start, item.end, original, item.text))
        shift += len(item.text) - len(original)
    return out


__all__ = ["OPERATORS", "Deidentified", "PiiError", "Replacement", "deidentify", "restore"]

"""De-identify texts with Presidio's analyzer, offline: blank spaCy pipelines (no model
download), the recognizers in ``include.pii.recognizers`` (Chinese names and addresses in
``include.pii.zh``), then a policy's operator per entity.

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

from include.pii.entities import NEEDS_MODEL, OPERATORS, STRUCTURED
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
    unknown = [e for e in policy if e not in STRUCTURED + NEEDS_MODEL]
    if unknown:
        raise PiiError(f"cannot recognise {', '.join(unknown)}")
    if locale == "en" and llm_recognizer is None and any(e in NEEDS_MODEL for e in policy):
        raise PiiError("English names and addresses are found only by the LLM recognizer: turn it on")
    operators = Operators(policy, key, salt)
    engine = analyzer()
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
        out.append(_replace(text, _without_overlaps(found), operators))
    return out


def _replace(text: str, found: list[Any], operators: Operators) -> Deidentified:
    """The text with each found span replaced, in reading order, and each replacement with the
    original at its own span (two values with the same mask keep their own originals).

    Why not presidio-anonymizer: the spans are already free of overlaps (:func:`_without_overlaps`)
    and every replacement comes from :class:`Operators`, so all that is left is splicing
    strings; done here it also keeps each replacement tied to its span, which the anonymizer's
    output (by replacement text) does not, and it costs a fifth of the time.
    """
    seen: dict[tuple[str, str], str] = {}
    pieces: list[str] = []
    replacements: list[Replacement] = []
    at = written = 0
    for result in found:  # sorted by start
        original = text[result.start : result.end]
        replacement = operators.apply(result.entity_type, original, seen)
        pieces.append(text[at : result.start])
        written += result.start - at
        replacements.append(Replacement(result.entity_type, written, written + len(replacement), original, replacement))
        pieces.append(replacement)
        written += len(replacement)
        at = result.end
    pieces.append(text[at:])
    return Deidentified("".join(pieces), replacements)


def _find(
    engine: Any, text: str, locale: str, entities: list[str], score_threshold: float, llm_recognizer: Any
) -> list[Any]:
    """What the offline recognizers find, then the LLM recognizer's names and addresses.

    Raises:
        LlmUnusable: the LLM recognizer failed closed for this text.
    """
    language = language_of(text, locale)
    plain = text.translate(_HALF_WIDTH)  # same length: spans stay valid for the original text
    offline = [e for e in entities if e in STRUCTURED or language == "zh"]  # zh names and addresses offline
    found = (
        list(engine.analyze(text=plain, language=language, entities=offline, score_threshold=score_threshold))
        if offline
        else []
    )
    if llm_recognizer is not None:
        asked = llm_recognizer.for_language(language).analyze(text, entities)
        found.extend(r for r in asked if r.score >= score_threshold)
    return found


def _without_overlaps(found: list[Any]) -> list[Any]:
    """The results to replace, none overlapping another, by start: the most certain first, then
    the longest."""
    kept: list[Any] = []
    for r in sorted(found, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


__all__ = ["OPERATORS", "Deidentified", "PiiError", "Replacement", "deidentify", "restore"]

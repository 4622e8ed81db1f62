"""Person names and addresses through the configured LLM (no offline model recognises them).

The LLM is asked for a JSON list of the names and addresses it finds; each is then located in the
text. It speaks the same contracts as pre-labeling (Ollama's /api/generate or an OpenAI-compatible
/chat/completions), so a local Ollama keeps the data on the premises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

PROMPT = (
    "Find personal data in the text. Answer with JSON only, like "
    '{{"entities": [{{"type": "PERSON", "text": "..."}}, {{"type": "ADDRESS", "text": "..."}}]}}, '
    "listing every person's name (PERSON) and every street or postal address (ADDRESS) exactly as written. "
    'Answer {{"entities": []}} when there is none.\n\nText: """{text}"""'
)


class LlmRecognizer(EntityRecognizer):
    """PERSON and ADDRESS spans as the LLM names them (exact substrings only; nothing invented)."""

    ENTITIES = ("PERSON", "ADDRESS")

    def __init__(self, ask: Callable[[str], Any], language: str = "en", score: float = 0.85) -> None:
        self.ask = ask
        self.score = score
        super().__init__(supported_entities=list(self.ENTITIES), supported_language=language, name=f"llm_{language}")

    def load(self) -> None:
        return None

    def for_language(self, language: str) -> LlmRecognizer:
        return LlmRecognizer(self.ask, language, self.score)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        wanted = [e for e in entities if e in self.ENTITIES]
        if not wanted:
            return []
        answer = self.ask(PROMPT.format(text=text))
        try:
            found = json.loads(answer) if isinstance(answer, str) else answer
            spans = found.get("entities", []) if isinstance(found, dict) else []
        except (ValueError, AttributeError):
            return []
        results = []
        for span in spans:
            if not isinstance(span, dict) or span.get("type") not in wanted or not isinstance(span.get("text"), str):
                continue
            needle = span["text"].strip()
            start = text.find(needle) if needle else -1
            while start >= 0:
                results.append(RecognizerResult(span["type"], start, start + len(needle), self.score))
                start = text.find(needle, start + len(needle))
        return results


def llm_recognizer(settings: Any) -> LlmRecognizer:
    """The recognizer over whichever LLM is configured (OpenAI-compatible first, then Ollama)."""
    if settings.openai_base_url:
        from include.ml import llm

        client = llm.client(settings.openai_base_url, settings.openai_api_key, settings.openai_timeout)
        model = settings.openai_model
        return LlmRecognizer(lambda prompt: llm.ask_json(client, model, "You find personal data. Answer JSON.", prompt))
    from include.ml.prelabel.backends import llm_prelabeler

    prelabeler = llm_prelabeler(settings, "ollama", ["PERSON", "ADDRESS"], None)
    return LlmRecognizer(prelabeler.ask)

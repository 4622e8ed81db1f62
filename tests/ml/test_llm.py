"""LLM pre-labeling over the Ollama and OpenAI HTTP contracts: good, malformed, slow and failing answers."""

from __future__ import annotations

import pytest

from include.ml.http import BackendError
from include.ml.prelabel.backends import (
    PrelabelStats,
    build_prompt,
    ollama_prelabeler,
    openai_prelabeler,
    parse_llm_answer,
)
from tests.helpers.llm_server import LOGPROB_CONFIDENCE, verdict

LABELS = ["OK", "NG"]
TEXTS = ["The kettle is broken and leaks.", "The lamp works exactly as described.", "Sparks when plugged in."]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"label": "NG", "confidence": 0.9}', ("NG", 0.9)),
        ('```json\n{"label": "ok", "confidence": 0.7}\n```', ("OK", 0.7)),
        ({"label": "OK", "score": 1}, ("OK", 1.0)),
        ('{"label": "NG", "confidence": 0.2}', ("NG", 0.5)),  # floored: the named label stays the likeliest
        ("I think it is fine", None),
        ('{"label": "MAYBE", "confidence": 0.5}', None),
        ('{"label": "OK", "confidence": "high"}', None),
        ('{"label": "OK", "confidence": 1.5}', None),
        ('{"label": "OK"}', None),
        ('["OK", 0.9]', None),
        (None, None),
    ],
)
def test_parse_llm_answer(answer: object, expected: tuple[str, float] | None) -> None:
    suggestion = parse_llm_answer(answer, LABELS)
    if expected is None:
        assert suggestion is None
    else:
        assert suggestion is not None
        assert (suggestion.label, suggestion.confidence) == (expected[0], pytest.approx(expected[1]))
        assert sum(suggestion.probs.values()) == pytest.approx(1.0)


def test_prompt_names_every_label_and_asks_for_json() -> None:
    prompt = build_prompt("The kettle leaks.", ["OK", "NG", "Unsure"])
    assert all(f"- {label}:" in prompt for label in ("OK", "NG", "Unsure"))
    assert "JSON" in prompt and 'Text: """The kettle leaks."""' in prompt


def test_ollama_generate_contract(llm_server) -> None:
    model = ollama_prelabeler(llm_server.url, "llama3.2:1b", LABELS, timeout=5)
    stats = PrelabelStats()
    suggestions = model.predict(TEXTS, None, stats)
    assert [s.label for s in suggestions] == ["NG", "OK", "NG"]
    assert stats.predicted == 3 and stats.malformed == 0
    assert model.model_version == "ollama-llama3.2:1b"
    bodies = [b for p, b in llm_server.requests if p == "/api/generate"]
    assert all(b["stream"] is False and b["format"] == "json" and b["model"] == "llama3.2:1b" for b in bodies)


def test_openai_chat_contract(llm_server) -> None:
    """The label is constrained by a JSON schema, and its probability comes from logprobs."""
    model = openai_prelabeler(f"{llm_server.url}/v1", "gpt-4o-mini", LABELS, api_key="sk-test", timeout=5)
    stats = PrelabelStats()
    suggestions = model.predict(TEXTS, None, stats)
    assert [s.label for s in suggestions] == ["NG", "OK", "NG"]
    body = next(b for p, b in llm_server.requests if p == "/v1/chat/completions")
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["properties"]["label"]["enum"] == LABELS
    assert body["logprobs"] is True and body["top_logprobs"] == 5 and body["messages"][-1]["role"] == "user"
    for s in suggestions:  # the stub states 0.8-0.99 but its logprobs say 0.93: the measured one wins
        assert s.confidence == pytest.approx(LOGPROB_CONFIDENCE) and not s.self_reported
        assert sum(s.probs.values()) == pytest.approx(1.0)


def test_without_logprobs_the_stated_confidence_is_flagged_self_reported(llm_server) -> None:
    llm_server.logprobs = False
    model = openai_prelabeler(f"{llm_server.url}/v1", "gpt-4o-mini", LABELS, api_key=None, timeout=5)
    (first,) = model.predict(TEXTS[:1], None, PrelabelStats())
    assert first.self_reported and first.confidence == pytest.approx(verdict(TEXTS[0])[1])


def test_rate_limits_are_retried_with_backoff(llm_server) -> None:
    llm_server.rate_limit_next = 2
    model = openai_prelabeler(f"{llm_server.url}/v1", "m", LABELS, api_key="k", timeout=5, concurrency=1)
    stats = PrelabelStats()
    assert [s.label for s in model.predict(TEXTS[:1], None, stats)] == ["NG"]
    assert stats.failed == 0 and len([p for p, _ in llm_server.requests if p == "/v1/chat/completions"]) == 3


def test_a_rate_limit_that_never_lifts_is_counted_as_failed(llm_server, monkeypatch) -> None:
    from include.ml import llm

    monkeypatch.setattr(llm, "MAX_RETRIES", 1)
    llm_server.rate_limit_next = 100
    model = openai_prelabeler(f"{llm_server.url}/v1", "m", LABELS, api_key="k", timeout=4.5, concurrency=1)
    with pytest.raises(BackendError, match="answered 429 after 1 retries"):
        model.predict(TEXTS[:1], None, PrelabelStats())
    assert len([p for p, _ in llm_server.requests if p == "/v1/chat/completions"]) == 2


def test_label_probabilities_from_logprobs_need_an_unambiguous_first_token() -> None:
    from types import SimpleNamespace as T

    from include.ml.llm import label_probs

    content = '{"label": "NEGATIVE", "confidence": 0.7}'
    tokens = [
        T(token='{"label": "', logprob=0.0),
        T(
            token="NEG",
            logprob=-0.2,
            top_logprobs=[T(token="NEG", logprob=-0.2), T(token="POS", logprob=-1.8), T(token="NE", logprob=-4.0)],
        ),
    ]
    probs = label_probs(content, tokens, ["NEGATIVE", "POSITIVE"])
    assert probs is not None and probs["NEGATIVE"] > 0.8 and sum(probs.values()) == pytest.approx(1.0)
    assert label_probs(content, tokens, ["NEGATIVE", "NEUTRAL"]) is None  # "NE" begins both
    assert label_probs('{"oops": 1}', tokens, ["NEGATIVE", "POSITIVE"]) is None


def test_malformed_answers_are_counted_not_fatal(llm_server) -> None:
    llm_server.malformed_every = 2
    model = ollama_prelabeler(llm_server.url, "llama3.2:1b", LABELS, timeout=5, concurrency=1)
    stats = PrelabelStats()
    suggestions = model.predict(TEXTS * 2, None, stats)
    assert stats.malformed == 3 and stats.predicted == 3
    assert sum(s is None for s in suggestions) == 3
    assert stats.examples and "unusable answer" in stats.examples[0]


def test_slow_answers_time_out_and_are_counted(llm_server) -> None:
    model = ollama_prelabeler(llm_server.url, "llama3.2:1b", LABELS, timeout=0.3, concurrency=3)
    llm_server.delay = 1.0
    with pytest.raises(BackendError, match="did not answer within"):
        model.predict(TEXTS, None, PrelabelStats())  # every request failed: the run must say so


def test_a_server_that_fails_everything_is_reported(llm_server) -> None:
    llm_server.fail_status = 503
    model = openai_prelabeler(f"{llm_server.url}/v1", "m", LABELS, api_key=None, timeout=2)
    with pytest.raises(BackendError, match="answered 503"):
        model.predict(TEXTS, None, PrelabelStats())


def test_one_slow_answer_among_many_is_counted_as_failed(llm_server) -> None:
    llm_server.delay, llm_server.delay_when = 3.0, "Sparks"
    model = ollama_prelabeler(llm_server.url, "llama3.2:1b", LABELS, timeout=1.0, concurrency=3)
    stats = PrelabelStats()
    suggestions = model.predict(TEXTS, None, stats)
    assert (stats.predicted, stats.failed) == (2, 1)
    assert suggestions[2] is None and "did not answer within" in stats.examples[0]

"""A local HTTP server speaking the Ollama and OpenAI contracts (we cannot run either model here).

Endpoints: Ollama ``POST /api/generate`` and ``POST /api/embed``; OpenAI-compatible
``POST /v1/chat/completions`` and ``POST /v1/embeddings``. Answers are deterministic: a text that
mentions a defect is NG, anything else OK; a personal-data prompt gets the ``known_entities``
that occur in its text. Faults can be switched on: every n-th answer
malformed, slow answers, or HTTP errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFECT_WORDS = (
    "broken",
    "crack",
    "defect",
    "fail",
    "not power",
    "leak",
    "overheat",
    "spark",
    "dead",
    "stuck",
    "burnt",
    "missing",
    "loose",
    "swell",
    "drops",
)


def verdict(text: str) -> tuple[str, float]:
    lower = text.lower()
    hits = sum(word in lower for word in DEFECT_WORDS)
    return ("NG", min(0.99, 0.7 + 0.1 * hits)) if hits else ("OK", 0.8)


def fake_vector(text: str, dim: int) -> list[float]:
    """A deterministic pseudo-embedding (unit length after the client normalises it)."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return out[:dim]


def _token_logprobs(content: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Tokens of the answer with logprobs, the way servers give them: the label value's token has
    the answer's label at ``LOGPROB_CONFIDENCE`` and the schema's other labels sharing the rest."""
    try:
        answer = json.loads(content)
    except ValueError:
        answer = None
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    labels = schema.get("properties", {}).get("label", {}).get("enum") or []
    if not isinstance(answer, dict) or answer.get("label") not in labels:
        return [{"token": content, "logprob": -0.01, "bytes": None, "top_logprobs": []}]
    label = answer["label"]
    p = LOGPROB_CONFIDENCE
    head = content[: content.index(f'"{label}"') + 1]
    tail = content[len(head) + len(label) :]
    others = [lbl for lbl in labels if lbl != label]
    top = [{"token": label, "logprob": math.log(p), "bytes": None}]
    top += [{"token": o, "logprob": math.log((1 - p) / len(others)), "bytes": None} for o in others]
    return [
        {"token": head, "logprob": -0.001, "bytes": None, "top_logprobs": []},
        {"token": label, "logprob": math.log(p), "bytes": None, "top_logprobs": top},
        {"token": tail, "logprob": -0.001, "bytes": None, "top_logprobs": []},
    ]


LOGPROB_CONFIDENCE = 0.93  # the label token's probability in the stub's logprobs


class FakeLLMServer:
    def __init__(self, *, ollama_dim: int = 768, openai_dim: int = 256) -> None:
        self.ollama_dim = ollama_dim
        self.openai_dim = openai_dim
        self.malformed_every = 0  # every n-th generation answer is malformed (0: never)
        self.delay = 0.0  # seconds before answering
        self.delay_when = ""  # only delay requests whose body contains this text ("" = all)
        self.fail_status = 0  # answer this HTTP status instead (0: never)
        self.rate_limit_next = 0  # answer the next n chat/embedding requests 429 (with Retry-After: 0)
        self.logprobs = True  # answer logprobs when a chat request asks for them
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # What the model "knows" are names and addresses: a personal-data prompt gets those it sees.
        self.known_entities: list[dict[str, str]] = []
        self._count = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                server.requests.append((self.path, body))
                if server.delay and (not server.delay_when or server.delay_when in json.dumps(body)):
                    time.sleep(server.delay)
                if server.fail_status:
                    self._send(server.fail_status, {"error": "injected failure"})
                    return
                with server._lock:
                    limited = server.rate_limit_next > 0 and self.path.startswith("/v1/")
                    if limited:
                        server.rate_limit_next -= 1
                if limited:
                    self._send(429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}}, retry_after=0)
                    return
                routes = {
                    "/api/generate": server._ollama_generate,
                    "/api/embed": server._ollama_embed,
                    "/v1/chat/completions": server._openai_chat,
                    "/v1/embeddings": server._openai_embed,
                }
                handler = routes.get(self.path)
                if handler is None:
                    self._send(404, {"error": f"no route {self.path}"})
                    return
                self._send(200, handler(body))

            def _send(self, status: int, payload: Any, retry_after: float | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", str(retry_after))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- answers ---------------------------------------------------------------------------------
    def _answer(self, prompt: str) -> str:
        with self._lock:
            self._count += 1
            n = self._count
        if self.malformed_every and n % self.malformed_every == 0:
            return [
                "I think this one is fine.",
                '{"label": "MAYBE", "confidence": 0.5}',
                '{"label": "OK", "confidence": "high"}',
            ][n % 3]
        match = re.search(r'Text: """(.*)"""', prompt, re.S)
        if prompt.startswith("Find personal data"):
            text = match.group(1) if match else ""
            return json.dumps({"entities": [e for e in self.known_entities if e["text"] in text]}, ensure_ascii=False)
        label, confidence = verdict(match.group(1) if match else prompt)
        return json.dumps({"label": label, "confidence": confidence})

    def _ollama_generate(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": body.get("model"),
            "created_at": "2026-11-22T00:00:00Z",
            "response": self._answer(body.get("prompt", "")),
            "done": True,
            "done_reason": "stop",
        }

    def _ollama_embed(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        texts = inputs if isinstance(inputs, list) else [inputs]
        return {"model": body.get("model"), "embeddings": [fake_vector(t, self.ollama_dim) for t in texts]}

    def _openai_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["messages"][-1]["content"]
        content = self._answer(prompt)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if body.get("logprobs") and self.logprobs:
            choice["logprobs"] = {"content": _token_logprobs(content, body)}
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_790_000_000,
            "model": body.get("model"),
            "choices": [choice],
        }

    def _openai_embed(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t, self.openai_dim)}
            for i, t in enumerate(texts)
        ]
        return {
            "object": "list",
            "model": body.get("model"),
            "data": list(reversed(data)),
        }  # any order: clients sort by index

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

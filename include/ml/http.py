"""HTTP helpers shared by the OpenAI-compatible and Ollama backends."""

from __future__ import annotations

from typing import Any

import requests

from include.errors import Unavailable


class BackendError(Unavailable, RuntimeError):
    """A model server failed, timed out or answered something unusable; the message says which."""


def post_json(url: str, body: dict[str, Any], *, timeout: float, headers: dict[str, str] | None = None) -> Any:
    """POST JSON and return the decoded answer, or raise BackendError naming the URL."""
    try:
        response = requests.post(url, json=body, timeout=timeout, headers=headers or {})
    except requests.Timeout as exc:
        raise BackendError(f"{url} did not answer within {timeout:.0f} s") from exc
    except requests.RequestException as exc:
        raise BackendError(f"cannot reach {url}: {exc.__class__.__name__}") from exc
    if response.status_code in (401, 403):
        raise BackendError(f"{url} refused the API key ({response.status_code})")
    if not response.ok:
        raise BackendError(f"{url} answered {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError as exc:
        raise BackendError(f"{url} answered something that is not JSON") from exc

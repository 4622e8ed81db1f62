"""Secrets the embedded stack generates once and keeps under LABELOPS_HOME (mode 600)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


class LocalSecrets:
    """A small JSON file of generated secrets; values are created on first use and then kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, factory: Any = None) -> Any:
        if key not in self._data:
            self._data[key] = factory() if factory else secrets.token_urlsafe(32)
            self.save()
        return self._data[key]

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

"""Typed, validated parameters: the one declaration behind DAG ``Param``s, web forms, API checks
and the values a pipeline step receives.

A :class:`ParamSpec` is declared once, next to the code whose behaviour it tunes (a scoring
strategy next to the scoring functions, a model kind next to the heads). Pipelines compose them
(``include.pipelines.catalog``). This module imports nothing heavy, so DAG files can use it at
parse time. It is hand-written rather than pydantic because the same declaration must also
render Airflow's JSON-schema ``Param`` and an HTML form, which a model class does not give.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ParamType = Literal["int", "float", "bool", "choice", "str", "dataset"]

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no", "")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: str.isdigit() accepts "²"
# PostgreSQL int4 / int8 bounds: ids and counts beyond them cannot name a row.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


class ParamError(ValueError):
    """A parameter value is missing or invalid; the message names the parameter and what it takes."""


def parse_int(raw: Any, *, what: str, minimum: int | None = None, maximum: int | None = INT8_MAX) -> int:
    """A whole number from a form or JSON value, within bounds, or :class:`ParamError`."""
    if isinstance(raw, bool) or raw is None:
        raise ParamError(f"{what} must be a whole number")
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    elif isinstance(raw, str) and _INT_RE.match(raw.strip()) and len(raw.strip()) <= 20:
        number = int(raw.strip())
    else:
        raise ParamError(f"{what} must be a whole number")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ParamError(f"{what} must be {_range_text(minimum, maximum)}")
    return number


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {_num(minimum)} and {_num(maximum)}"
    if minimum is not None:
        return f"at least {_num(minimum)}"
    return f"at most {_num(maximum)}"


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, type, default, bounds or choices, and the words people see.

    ``nullable`` means "may be left empty", which then means ``default`` (usually ``None``,
    "all" or "automatic", as ``help`` says). ``type="dataset"`` is a dataset id, shown as a
    dataset picker.
    """

    name: str
    label: str
    type: ParamType
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    nullable: bool = False
    max_length: int = 200

    def __post_init__(self) -> None:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"{self.name}: a choice parameter needs choices")
        if self.default is None and not self.nullable and self.type != "dataset":
            raise ValueError(f"{self.name}: a parameter without a default must be nullable")
        if self.default is not None:
            self.parse(self.default)  # a default that fails its own checks is a declaration bug

    @property
    def required(self) -> bool:
        return self.default is None and not self.nullable

    # -- validation ----------------------------------------------------------------------
    def parse(self, raw: Any) -> Any:
        """The typed value for ``raw`` (a form string or a JSON value); empty means the default.

        Raises:
            ParamError: the value does not fit the declaration (the message says why).
        """
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and self.type != "bool"):
            if self.required:
                raise ParamError(f"{self.label} is required")
            return self.default
        if self.type == "bool":
            return self._parse_bool(raw)
        if self.type in ("int", "dataset"):
            minimum = 1 if self.type == "dataset" else self._int_bound(self.minimum)
            maximum = INT4_MAX if self.type == "dataset" else self._int_bound(self.maximum, INT8_MAX)
            return parse_int(raw, what=self.label, minimum=minimum, maximum=maximum)
        if self.type == "float":
            return self._parse_float(raw)
        if not isinstance(raw, str):
            raise ParamError(f"{self.label} must be text")
        value = raw.strip()
        if self.type == "choice":
            if value not in self.choices:
                raise ParamError(f"{self.label} must be one of: {', '.join(self.choices)}")
            return value
        if len(value) > self.max_length or "\x00" in value:
            raise ParamError(f"{self.label} must be at most {self.max_length} characters of text")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ParamError(f"{self.label} {self.help or 'has the wrong form'}")
        return value

    @staticmethod
    def _int_bound(bound: float | None, fallback: int | None = None) -> int | None:
        return fallback if bound is None else int(bound)

    def _parse_bool(self, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE:
            return True
        if isinstance(raw, str) and raw.strip().lower() in _FALSE:
            return False
        raise ParamError(f"{self.label} must be true or false")

    def _parse_float(self, raw: Any) -> float:
        if isinstance(raw, bool):
            raise ParamError(f"{self.label} must be a number")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ParamError(f"{self.label} must be a number") from None
        if not math.isfinite(value):
            raise ParamError(f"{self.label} must be a number")
        low_ok = self.minimum is None or (value > self.minimum if self.exclusive_minimum else value >= self.minimum)
        if not low_ok or (self.maximum is not None and value > self.maximum):
            bound = f"above {_num(self.minimum)}" if self.exclusive_minimum else None
            if bound and self.maximum is not None:
                raise ParamError(f"{self.label} must be {bound} and at most {_num(self.maximum)}")
            raise ParamError(f"{self.label} must be {bound or _range_text(self.minimum, self.maximum)}")
        return value

    # -- Airflow -------------------------------------------------------------------------
    def json_schema(self) -> dict[str, Any]:
        """The JSON schema Airflow validates a run's conf against (same bounds and choices)."""
        base = {
            "int": "integer",
            "dataset": "integer",
            "float": "number",
            "bool": "boolean",
            "choice": "string",
            "str": "string",
        }[self.type]
        schema: dict[str, Any] = {"type": ["null", base] if self.nullable or self.required else base}
        if self.type == "dataset":
            schema.update(minimum=1, maximum=INT4_MAX)
        if self.type in ("int", "float"):
            if self.minimum is not None:
                schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        if self.type == "choice":
            schema["enum"] = [*self.choices, *([None] if self.nullable else [])]
        if self.type == "str":
            schema["maxLength"] = self.max_length
            if self.pattern:
                schema["pattern"] = f"^(?:{self.pattern})$"
        return schema

    def to_airflow(self) -> Any:
        """An ``airflow.sdk.Param`` (imported here: only DAG files call this)."""
        from airflow.sdk import Param

        description = self.label + (f": {self.help}" if self.help else "")
        return Param(self.default, description=description, **self.json_schema())


def parse_values(specs: tuple[ParamSpec, ...], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for ``specs`` from ``raw``; missing ones take their defaults."""
    return {spec.name: spec.parse(raw.get(spec.name)) for spec in specs}

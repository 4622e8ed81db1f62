"""Typed, validated parameters: the one declaration behind DAG ``Param``s, web forms, API checks
and the values a pipeline step receives.

A :class:`ParamSpec` is declared once, next to the code whose behaviour it tunes (a scoring
strategy next to the scoring functions, a model kind next to the heads). Pipelines compose them
(``include.pipelines.catalog``). This module imports nothing heavy, so DAG files can use it at
parse time. It is hand-written rather than pydantic because the same declaration must also
render Airflow's JSON-schema ``Param`` and an HTML form, which a model class does not give.

Specs group into :class:`Values` types, frozen dataclasses whose fields are declared by specs:
a step's parameters, a request body, a dataset setting. One type parses a run's conf, an HTML
form and a JSON body alike, gives the OpenAPI schema and records exactly what ran.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Self

from include.errors import Invalid

ParamType = Literal["int", "float", "bool", "choice", "str", "text", "list", "mapping", "dataset", "annotator"]

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no", "")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: str.isdigit() accepts "²"
# PostgreSQL int4 / int8 bounds: ids and counts beyond them cannot name a row.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


class ParamError(Invalid):
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
    # Shown and typed as a percentage in forms (the value itself is a share from 0 to 1).
    percent: bool = False
    # Whole numbers allowed outside the bounds, with a meaning ``help`` gives (0: never).
    also: tuple[int, ...] = ()
    strip: bool = True  # text is trimmed (never a password)
    empty: str = ""  # what an empty field means, in a word or two ("off", "automatic"): a form's placeholder

    def __post_init__(self) -> None:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"{self.name}: a choice parameter needs choices")
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
            if self.also:
                number = parse_int(raw, what=self.label, minimum=None, maximum=None)
                if number in self.also:
                    return number
                try:
                    return parse_int(number, what=self.label, minimum=minimum, maximum=maximum)
                except ParamError:
                    extra = " or ".join(str(a) for a in self.also)
                    raise ParamError(f"{self.label} must be {_range_text(minimum, maximum)}, or {extra}") from None
            return parse_int(raw, what=self.label, minimum=minimum, maximum=maximum)
        if self.type == "float":
            return self._parse_float(raw)
        if self.type == "list":
            return self._parse_list(raw)
        if self.type == "mapping":
            return self._parse_mapping(raw)
        if not isinstance(raw, str):
            raise ParamError(f"{self.label} must be text")
        value = raw.strip() if self.strip else raw
        if self.type == "choice":
            if value not in self.choices:
                raise ParamError(f"{self.label} must be one of: {', '.join(self.choices)}")
            return value
        if len(value) > self.max_length or "\x00" in value:
            raise ParamError(f"{self.label} must be at most {self.max_length} characters of text")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ParamError(f"{self.label} {self.help or 'has the wrong form'}")
        return value

    def _parse_list(self, raw: Any) -> list[str]:
        items = raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ParamError(f"{self.label} must be a list of names")
        cleaned = [i.strip() for i in items if i.strip()]
        if any(len(i) > self.max_length or "\x00" in i for i in cleaned):
            raise ParamError(f"{self.label}: each must be at most {self.max_length} characters of text")
        return cleaned

    def _parse_mapping(self, raw: Any, *, lines: bool = False) -> dict[str, str]:
        if isinstance(raw, str) and lines:
            parsed: dict[str, str] = {}
            for number, line in enumerate(raw.splitlines(), start=1):
                if not line.strip():
                    continue
                key, sep, value = line.partition(":")
                if not sep:
                    raise ParamError(f"{self.label} line {number}: write it as NAME: text")
                parsed[key.strip()] = value.strip()
            raw = parsed
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise ParamError(f"{self.label} must map names to short texts")
        if any(len(v) > self.max_length or "\x00" in v for v in raw.values()):
            raise ParamError(f"{self.label}: each text must be at most {self.max_length} characters")
        return {k: v for k, v in raw.items()}

    def parse_form(self, raw: Any) -> Any:
        """As :meth:`parse`, for a form field: a percentage field is typed in percent, a list
        comma-separated, a mapping as ``key: value`` lines."""
        if self.type == "list" and isinstance(raw, str) and raw.strip():
            return self._parse_list(raw.split(","))
        if self.type == "mapping" and isinstance(raw, str) and raw.strip():
            return self._parse_mapping(raw, lines=True)
        if not self.percent or raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.parse(raw)
        as_percent = ParamSpec(
            self.name,
            f"{self.label} (%)",
            "float",
            minimum=None if self.minimum is None else self.minimum * 100,
            maximum=None if self.maximum is None else self.maximum * 100,
            nullable=True,
        )
        return self.parse(as_percent.parse(raw) / 100)

    def form_value(self, value: Any) -> Any:
        """The value as a form shows it (a share as a percentage, None as empty)."""
        if value is None:
            return ""
        if isinstance(value, str):  # as typed (a refused form shown again)
            return value
        if self.percent:
            return f"{value * 100:g}"
        if self.type == "list":
            return ", ".join(value)
        if self.type == "mapping":
            return "\n".join(f"{k}: {v}" for k, v in value.items())
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
            "text": "string",
            "annotator": "string",
            "list": "array",
            "mapping": "object",
        }[self.type]
        schema: dict[str, Any] = {"type": ["null", base] if self.nullable or self.required else base}
        if self.also:
            bounded = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
            return {
                "anyOf": [{"type": "null"}, {"enum": list(self.also)}, bounded]
                if self.nullable
                else [{"enum": list(self.also)}, bounded]
            }
        if self.type == "dataset":
            schema.update(minimum=1, maximum=INT4_MAX)
        if self.type in ("int", "float"):
            if self.minimum is not None:
                schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        if self.type == "choice":
            schema["enum"] = [*self.choices, *([None] if self.nullable else [])]
        if self.type == "list":
            schema["items"] = {"type": "string", "maxLength": self.max_length}
        if self.type == "mapping":
            schema["additionalProperties"] = {"type": "string", "maxLength": self.max_length}
        if self.type in ("str", "text", "annotator"):
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


# -- groups of parameters as types ----------------------------------------------------------
def param(spec: ParamSpec) -> Any:
    """A :class:`Values` field declared by ``spec``: its default and its checks come from it.

    The field may have another name than the parameter (``epochs`` for ``finetune_epochs``).
    """
    if spec.required:
        return field(metadata={"spec": spec})
    return field(default=spec.default, metadata={"spec": spec})


def group(values: type[Values]) -> Any:
    """A :class:`Values` field holding another group whose parameters sit beside this one's
    (a run's conf is flat: the train step's hyperparameters are at its top level)."""
    return field(default_factory=values, metadata={"group": values})


class Values:
    """Typed values of a group of :class:`ParamSpec`: subclass as a frozen, keyword-only
    dataclass whose fields are :func:`param` (or :func:`group`) declarations.

    Plain fields (no spec) are allowed for settings no person sets; they keep their default.
    Instances check their values against the specs, so a hand-built one cannot hold what a
    form would have refused.
    """

    _specs: ClassVar[tuple[tuple[str, ParamSpec | type[Values]], ...]]

    def __post_init__(self) -> None:
        for name, declared in self._declared():
            if isinstance(declared, ParamSpec):
                declared.parse(getattr(self, name))

    @classmethod
    def _declared(cls) -> tuple[tuple[str, ParamSpec | type[Values]], ...]:
        cached = cls.__dict__.get("_specs")
        if cached is None:
            found: list[tuple[str, ParamSpec | type[Values]]] = []
            for f in fields(cls):  # type: ignore[arg-type]
                if "spec" in f.metadata:
                    found.append((f.name, f.metadata["spec"]))
                elif "group" in f.metadata:
                    found.append((f.name, f.metadata["group"]))
            cached = tuple(found)
            cls._specs = cached
        return cached

    @classmethod
    def specs(cls) -> tuple[ParamSpec, ...]:
        """Every parameter, nested groups' included, in declaration order."""
        out: list[ParamSpec] = []
        for _, declared in cls._declared():
            out.extend((declared,) if isinstance(declared, ParamSpec) else declared.specs())
        return tuple(out)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in cls.specs())

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, Any],
        *,
        strict: bool = False,
        form: bool = False,
        current: Values | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """The typed values from ``raw`` (a run's params, a JSON body or a form).

        ``strict``: a name that is not a parameter here is an error (a JSON body, where a typo
        must not silently become a default). ``form``: an HTML form, where an unticked checkbox
        is absent (false) and percentages are typed in percent. ``current``: a partial update,
        where an absent parameter keeps its current value instead of the default. ``by_name``
        (default: ``strict``): messages name a parameter as sent, not by its label.

        Raises:
            ParamError: an unknown, missing or invalid parameter (the message names it).
        """
        if strict:
            unknown = sorted(set(raw) - set(cls.names()))
            if unknown:
                known = ", ".join(cls.names()) or "no parameters"
                raise ParamError(f"unknown field {unknown[0]!r}; this takes: {known}")
        kept = current.as_params() if current is not None else {}
        return cls._build(raw, form=form, kept=kept, by_name=strict if by_name is None else by_name)

    @classmethod
    def _build(cls, raw: Mapping[str, Any], *, form: bool, kept: Mapping[str, Any], by_name: bool = False) -> Self:
        """``by_name``: messages name the field as sent (a JSON body), not its label (a form)."""
        kwargs: dict[str, Any] = {}
        for name, declared in cls._declared():
            if not isinstance(declared, ParamSpec):
                kwargs[name] = declared._build(raw, form=form, kept=kept, by_name=by_name)
                continue
            spec = dataclasses.replace(declared, label=declared.name) if by_name else declared
            if spec.name not in raw and spec.name in kept:
                kwargs[name] = kept[spec.name]
            elif form and spec.type == "bool" and spec.name not in raw:
                kwargs[name] = False
            elif form:
                kwargs[name] = spec.parse_form(raw.get(spec.name))
            else:
                kwargs[name] = spec.parse(raw.get(spec.name))
        return cls(**kwargs)

    @classmethod
    def from_object(cls, source: Any) -> Self:
        """The values held by an object with attributes named like the parameters (a row)."""
        return cls._build({}, form=False, kept={s.name: getattr(source, s.name) for s in cls.specs()})

    def as_params(self) -> dict[str, Any]:
        """Parameter name -> value, nested groups flattened (what a job row records)."""
        out: dict[str, Any] = {}
        for name, declared in self._declared():
            value = getattr(self, name)
            if isinstance(declared, ParamSpec):
                out[declared.name] = value
            else:
                out.update(value.as_params())
        return out

    def replace(self, **params: Any) -> Self:
        """A copy with some parameters (by parameter name) changed, checked like a parse."""
        return type(self)._build(params, form=False, kept=self.as_params())

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of a body of these values (unknown fields refused)."""
        return schema_of(cls.specs())

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Parameter name -> default, for documentation."""
        return {spec.name: spec.default for spec in cls.specs()}


def values_type(name: str, specs: tuple[ParamSpec, ...]) -> type[Values]:
    """A :class:`Values` type made from specs alone (a step declared in a test, say)."""
    made = dataclasses.make_dataclass(
        name, [(s.name, Any, param(s)) for s in specs], bases=(Values,), frozen=True, kw_only=True
    )
    return made


def schema_of(specs: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """The JSON schema of an object holding these parameters (unknown fields refused)."""
    properties = {}
    for spec in specs:
        schema = spec.json_schema()
        if spec.required and isinstance(schema.get("type"), list):  # a body must send it, not null
            schema["type"] = next(t for t in schema["type"] if t != "null")
        if spec.help or spec.label:
            schema["description"] = spec.label + (f": {spec.help}" if spec.help else "")
        if spec.default is not None:
            schema["default"] = spec.default
        properties[spec.name] = schema
    body: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [spec.name for spec in specs if spec.required]
    if required:
        body["required"] = required
    return body

"""Training configs as YAML files: fixed hyperparameters, and optionally a sweep over some of them.

A config names parameters of the train step (``include.ml.training.params``) at the top level;
a ``sweep`` section lists the values (or ranges) to try::

    model_kind: mlp
    epochs: 300
    sweep:
      method: random        # grid: every combination; random: ``trials`` draws (seeded);
                            # optuna: ``trials`` chosen one by one by Optuna's TPE from the results so far
      trials: 6
      params:
        lr: {low: 0.0003, high: 0.01, log: true}
        batch_size: [32, 64]

Every value is checked against its declaration, and a problem names its line and key, so a
typo is reported where it is. PyYAML gives the line numbers (its node tree); the checks are the
parameters' own. No database and no torch here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.errors import Invalid
from include.ml.training.params import TRAIN_PARAMS
from include.params import ParamError, ParamSpec

MAX_BYTES = 5 * 1024 * 1024
MAX_TRIALS = 50
METHODS = ("grid", "random", "optuna")
_SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in TRAIN_PARAMS}
_NUMERIC = ("int", "float")


@dataclass(frozen=True)
class Problem:
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.key}: {self.message}"


class ConfigError(Invalid):
    """The config cannot be used; ``problems`` says where and why (one line each)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems), problems=[vars(p) for p in problems])


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.integer else float(value)


@dataclass(frozen=True)
class Sweep:
    method: str
    trials: int
    space: dict[str, list[Any] | Range] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trials": self.trials,
            "space": {k: (v if isinstance(v, list) else vars(v)) for k, v in self.space.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Sweep:
        space = {k: (v if isinstance(v, list) else Range(**v)) for k, v in raw["space"].items()}
        return cls(method=raw["method"], trials=int(raw["trials"]), space=space)


@dataclass(frozen=True)
class TrainingConfig:
    values: dict[str, Any]
    sweep: Sweep | None = None


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: Any) -> Any:
    """The typed value of one node, as safe_load would give it."""
    import yaml

    return yaml.SafeLoader("").construct_object(node, deep=True)


def _check(spec: ParamSpec, value: Any, line: int, key: str, problems: list[Problem]) -> Any:
    try:
        return spec.parse(value)
    except ParamError as exc:
        problems.append(Problem(line, key, str(exc)))
        return None


def _sweep(node: Any, fixed: dict[str, Any], problems: list[Problem]) -> Sweep | None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), "sweep", "must be a mapping with method, trials and params"))
        return None
    method, trials, space = "grid", 0, {}
    for key_node, value_node in node.value:
        key, line = str(key_node.value), _line(key_node)
        if key == "method":
            method = str(value_node.value)
            if method not in METHODS:
                problems.append(Problem(line, "sweep.method", f"must be one of {', '.join(METHODS)}"))
        elif key == "trials":
            raw = _scalar(value_node)
            if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_TRIALS:
                problems.append(Problem(line, "sweep.trials", f"must be a whole number from 1 to {MAX_TRIALS}"))
            else:
                trials = raw
        elif key == "params":
            space = _space(value_node, fixed, problems)
        else:
            problems.append(Problem(line, f"sweep.{key}", "unknown key (method, trials, params)"))
    if not space:
        problems.append(Problem(_line(node), "sweep.params", "name at least one parameter to sweep"))
        return None
    if method == "grid":
        if any(isinstance(v, Range) for v in space.values()):
            problems.append(
                Problem(_line(node), "sweep.method", "a grid needs lists of values; ranges need random or optuna")
            )
            return None
        trials = math.prod(len(v) for v in space.values() if isinstance(v, list))
        if trials > MAX_TRIALS:
            problems.append(Problem(_line(node), "sweep.params", f"{trials} combinations; at most {MAX_TRIALS}"))
    elif trials == 0:
        problems.append(Problem(_line(node), "sweep.trials", f"{method} sweeps need a number of trials"))
    return Sweep(method, trials, space)


def _space(node: Any, fixed: dict[str, Any], problems: list[Problem]) -> dict[str, list[Any] | Range]:
    import yaml

    space: dict[str, list[Any] | Range] = {}
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), "sweep.params", "must map parameter names to values or ranges"))
        return space
    for key_node, value_node in node.value:
        name, line = str(key_node.value), _line(key_node)
        key = f"sweep.params.{name}"
        spec = _SPECS.get(name)
        if spec is None:
            problems.append(Problem(line, key, f"not a training parameter ({', '.join(_SPECS)})"))
            continue
        if name in fixed:
            problems.append(Problem(line, key, "also set at the top level; set it in one place"))
        if isinstance(value_node, yaml.SequenceNode):
            values = [_check(spec, _scalar(v), _line(v), key, problems) for v in value_node.value]
            if not values:
                problems.append(Problem(line, key, "list at least one value"))
            space[name] = values
        elif isinstance(value_node, yaml.MappingNode):
            space_range = _range(spec, value_node, key, problems)
            if space_range is not None:
                space[name] = space_range
        else:
            problems.append(Problem(line, key, "must be a list of values or {low, high, log}"))
    return space


def _range(spec: ParamSpec, node: Any, key: str, problems: list[Problem]) -> Range | None:
    if spec.type not in _NUMERIC:
        problems.append(Problem(_line(node), key, "only numeric parameters take a range; list the choices"))
        return None
    raw = {str(k.value): _scalar(v) for k, v in node.value}
    unknown = set(raw) - {"low", "high", "log"}
    if unknown or "low" not in raw or "high" not in raw:
        problems.append(Problem(_line(node), key, "a range is {low: ..., high: ..., log: true|false}"))
        return None
    low = _check(spec, raw["low"], _line(node), f"{key}.low", problems)
    high = _check(spec, raw["high"], _line(node), f"{key}.high", problems)
    if low is None or high is None:
        return None
    log = bool(raw.get("log", False))
    if not low < high:
        problems.append(Problem(_line(node), key, "low must be below high"))
        return None
    if log and low <= 0:
        problems.append(Problem(_line(node), key, "a log range needs low above 0"))
        return None
    return Range(float(low), float(high), log=log, integer=spec.type == "int")


def parse_config(text: str) -> TrainingConfig:
    """Parse and check a YAML training config.

    Raises:
        ConfigError: every problem found, each with its line and key.
    """
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError([Problem(1, "file", f"larger than {MAX_BYTES // (1024 * 1024)} MB")])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([Problem(line, "yaml", str(getattr(exc, "problem", None) or exc))]) from None
    if root is None:
        raise ConfigError([Problem(1, "file", "empty: name at least one training parameter")])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError([Problem(_line(root), "file", "must be a mapping of parameter names to values")])
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    sweep_node = None
    seen: set[str] = set()
    for key_node, value_node in root.value:
        key, line = str(key_node.value), _line(key_node)
        if key in seen:
            problems.append(Problem(line, key, "given twice"))
        seen.add(key)
        if key == "sweep":
            sweep_node = value_node
            continue
        spec = _SPECS.get(key)
        if spec is None:
            problems.append(Problem(line, key, f"not a training parameter ({', '.join([*_SPECS, 'sweep'])})"))
            continue
        if not isinstance(value_node, yaml.ScalarNode):
            problems.append(Problem(line, key, "must be a single value (sweep over values under sweep.params)"))
            continue
        parsed = _check(spec, _scalar(value_node), _line(value_node), key, problems)
        if parsed is not None or spec.nullable:
            values[key] = parsed
    sweep = _sweep(sweep_node, values, problems) if sweep_node is not None else None
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return TrainingConfig(values=values, sweep=sweep)


def trials(sweep: Sweep, fixed: dict[str, Any], *, seed: int = 0) -> list[dict[str, Any] | None]:
    """The parameter sets to train: every combination (grid), ``trials`` seeded draws (random), or
    ``trials`` placeholders (optuna: each trial asks include.ml.training.search when it starts)."""
    names = list(sweep.space)
    if sweep.method == "optuna":
        return [None] * sweep.trials
    if sweep.method == "grid":
        lists = [sweep.space[n] for n in names]
        combos = itertools.product(*lists)  # type: ignore[arg-type]
        return [{**fixed, **dict(zip(names, combo, strict=True))} for combo in combos]
    rng = np.random.default_rng(seed)
    drawn: list[dict[str, Any] | None] = []
    for _ in range(sweep.trials):
        choice: dict[str, Any] = {}
        for name in names:
            dimension = sweep.space[name]
            if isinstance(dimension, Range):
                choice[name] = dimension.draw(rng)
            else:
                choice[name] = dimension[int(rng.integers(len(dimension)))]
        drawn.append({**fixed, **choice})
    return drawn

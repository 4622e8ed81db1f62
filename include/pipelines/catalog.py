"""The pipelines users can trigger (web app buttons, JSON API), their DAGs and parameters.

Parameter specs here validate what a person typed before it reaches Airflow, which validates
again with the DAG's Param schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    name: str
    label: str
    kind: str  # "int" | "bool" | "choice"
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class PipelineSpec:
    kind: str
    dag_id: str
    title: str
    description: str
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    needs_dataset: bool = True


PIPELINES: dict[str, PipelineSpec] = {
    spec.kind: spec
    for spec in (
        PipelineSpec(
            "ls_import",
            "ls_import",
            "Import to Label Studio",
            "Send the dataset's new items to Label Studio as tasks.",
            (ParamSpec("limit", "Most tasks", "int", None, 1, 1_000_000, help="empty: all new items"),),
        ),
        PipelineSpec(
            "ls_export",
            "ls_export",
            "Export annotations",
            "Pull annotations that changed in Label Studio into the platform.",
            (ParamSpec("full", "Re-read everything", "bool", False),),
        ),
        PipelineSpec(
            "embed_items",
            "embed_items",
            "Compute embeddings",
            "Embed the dataset's texts (each text once per model) into pgvector.",
            (
                ParamSpec(
                    "embedding_model", "Embedding model", "choice", "all-MiniLM-L6-v2", choices=("all-MiniLM-L6-v2",)
                ),
            ),
        ),
        PipelineSpec(
            "train_classifier",
            "train_classifier",
            "Train classifier",
            "Train a classifier head on labeled embeddings; promote it only if it beats the current one.",
            (
                ParamSpec("model_kind", "Model", "choice", "mlp", choices=("logistic", "mlp")),
                ParamSpec("epochs", "Max epochs", "int", 200, 1, 1000),
            ),
        ),
        PipelineSpec(
            "prelabel",
            "prelabel",
            "Pre-label",
            "Predict labels for unlabeled tasks and write them to Label Studio as predictions.",
            (
                ParamSpec(
                    "backend",
                    "Backend",
                    "choice",
                    "auto",
                    choices=("auto", "classifier", "similarity", "ollama", "openai"),
                ),
                ParamSpec("limit", "Most tasks", "int", None, 1, 1_000_000, help="empty: all unlabeled"),
            ),
        ),
        PipelineSpec(
            "score_uncertainty",
            "score_uncertainty",
            "Score uncertainty",
            "Score unlabeled tasks so the hardest are labeled (and auto-assigned) first.",
            (
                ParamSpec(
                    "strategy",
                    "Strategy",
                    "choice",
                    "least_confidence",
                    choices=("least_confidence", "margin", "entropy"),
                ),
                ParamSpec("limit", "Most tasks", "int", None, 1, 10_000_000, help="empty: all"),
                ParamSpec("only_unlabeled", "Only unlabeled", "bool", True),
            ),
        ),
        PipelineSpec(
            "active_learning_nightly",
            "active_learning_nightly",
            "Full active-learning loop",
            "Export, embed, train, gate, pre-label and score, each step skipping when it has nothing to do.",
            (),
        ),
    )
}


class ParamError(ValueError):
    pass


def build_conf(spec: PipelineSpec, dataset_id: int | None, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validated DAG run conf from form or JSON values (strings or native types)."""
    conf: dict[str, Any] = {}
    if spec.needs_dataset:
        if dataset_id is None:
            raise ParamError("choose a dataset")
        conf["dataset_id"] = int(dataset_id)
    for param in spec.params:
        value = raw.get(param.name)
        if param.kind == "bool":
            conf[param.name] = value in (True, "1", "true", "on", "yes") if value is not None else bool(param.default)
        elif param.kind == "int":
            if value in (None, ""):
                conf[param.name] = param.default
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ParamError(f"{param.label} must be a whole number") from None
            if (param.minimum is not None and number < param.minimum) or (
                param.maximum is not None and number > param.maximum
            ):
                raise ParamError(f"{param.label} must be between {param.minimum} and {param.maximum}")
            conf[param.name] = number
        else:
            choice = param.default if value in (None, "") else str(value)
            if choice not in param.choices:
                raise ParamError(f"{param.label} must be one of: {', '.join(param.choices)}")
            conf[param.name] = choice
    return conf

"""Every pipeline, declared once: its name, its steps and their parameters.

One name runs through the whole path: a pipeline's name is its DAG id, the job kind of its
queued run and the key of its card in the web app; a step's name is its DAG task id, its
function in :mod:`include.pipelines.entrypoints` and the job kind it records. Parameters are
:class:`~include.params.ParamSpec` objects declared next to the code they tune (strategies in
``include.ml.scoring``, model kinds and hyperparameters in ``include.ml.training.params``...)
or here for orchestration. From them come the DAGs' ``Param``s, the web forms, the API's
validation and the values each step receives.

Nothing here imports torch, scikit-learn or a model: DAG files import this at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.errors import NotFound
from include.ml.batch import DIVERSE_HEAD
from include.ml.embeddings.names import EMBEDDING_MODEL
from include.ml.gate import MIN_F1, MIN_GAIN, REQUIRE_BASELINE, GatePolicy
from include.ml.prelabel.backends import BACKEND, LLM_BACKENDS
from include.ml.scoring import STRATEGY
from include.ml.training.params import BASE_ENCODER, MODEL_KIND, PAIR_ITERATIONS, RETUNE_AT, FinetuneParams, TrainParams
from include.params import ParamError, ParamSpec, Values, group, param, parse_values, schema_of
from include.services.housekeeping import RetentionPolicy

# -- orchestration parameters ----------------------------------------------------------------
DATASET = ParamSpec("dataset_id", "Dataset", "dataset")
ANY_DATASET = ParamSpec("dataset_id", "Dataset", "dataset", nullable=True, help="empty: every dataset")
IMPORT_LIMIT = ParamSpec(
    "limit", "Most tasks", "int", None, nullable=True, minimum=1, maximum=1_000_000, help="empty: all new items"
)
IMPORT_BATCH = ParamSpec(
    "batch_size", "Tasks per request", "int", 5000, minimum=100, maximum=20_000, help="tasks per Label Studio request"
)
FULL_EXPORT = ParamSpec(
    "full", "Re-read everything", "bool", False, help="ignore the watermark and re-read all annotated tasks"
)
EMBED_BATCH = ParamSpec("batch_size", "Texts per batch", "int", 2048, minimum=1, maximum=16_384)
MIN_LABELS = ParamSpec(
    "min_labels", "Minimum labels", "int", 20, minimum=4, maximum=1_000_000, help="skip training below this"
)
FORCE_TRAIN = ParamSpec("force", "Train even without new labels", "bool", False)
TRAIN_CONFIG = ParamSpec(
    "config_id",
    "Training config",
    "int",
    None,
    nullable=True,
    minimum=1,
    maximum=2_147_483_647,
    help="a training config of the dataset (dataset page); its values replace the ones here. A sweep needs one "
    "with a sweep section",
)
PRELABEL_LIMIT = ParamSpec(
    "limit", "Most tasks", "int", None, nullable=True, minimum=1, maximum=10_000_000, help="empty: all unlabeled"
)
ONLY_NEW = ParamSpec("only_new", "Skip tasks this model already pre-labeled", "bool", True)
SCORE_LIMIT = ParamSpec(
    "limit", "Most tasks", "int", None, nullable=True, minimum=1, maximum=10_000_000, help="empty: all"
)
ONLY_UNLABELED = ParamSpec("only_unlabeled", "Only unlabeled", "bool", True)
LLM_BACKEND = ParamSpec(
    "backend", "LLM", "choice", "openai", choices=LLM_BACKENDS, help="OPENAI_* or OLLAMA_* settings name the model"
)
MODEL_ID = ParamSpec(
    "model_id", "Model version", "int", None, nullable=True, minimum=1, maximum=2_147_483_647,
    help="a model id from the registry; empty: the dataset's promoted model",
)  # fmt: skip
INFERENCE_RUN = ParamSpec(
    "inference_run_id", "Prepared run", "int", None, nullable=True, minimum=1, maximum=2_147_483_647,
    help="a run the web app prepared (an uploaded file); empty: a new run over the dataset",
)  # fmt: skip
OPTIONAL_DATASET = ParamSpec("dataset_id", "Dataset", "dataset", nullable=True, help="empty only with a prepared run")
PROBE_LIMIT = ParamSpec(
    "limit", "Most evaluation items", "int", None, nullable=True, minimum=1, maximum=100_000, help="empty: all"
)

# Shown under "More options" in the web form.
ADVANCED = frozenset(
    {
        "batch_size",
        "lr",
        "patience",
        "val_fraction",
        "seed",
        "min_labels",
        "min_f1",
        "min_gain",
        "min_eval_per_label",
        "require_baseline",
        "force",
        "only_new",
        "epochs",
        "max_pairs",
        "finetune_lr",
        "finetune_batch_size",
        "finetune_epochs",
    }
)


# -- each step's values: one frozen type per step, its fields declared by the specs ------------
@dataclass(frozen=True, kw_only=True)
class ImportValues(Values):
    dataset_id: int | None = param(ANY_DATASET)
    limit: int | None = param(IMPORT_LIMIT)
    batch_size: int = param(IMPORT_BATCH)


@dataclass(frozen=True, kw_only=True)
class ExportValues(Values):
    dataset_id: int | None = param(ANY_DATASET)
    full: bool = param(FULL_EXPORT)


@dataclass(frozen=True, kw_only=True)
class NoValues(Values):
    """Steps that take no parameter (rotate_pii_key)."""


@dataclass(frozen=True, kw_only=True)
class AnyDatasetValues(Values):
    """Steps that work on one dataset or every one (loop_datasets, deidentify)."""

    dataset_id: int | None = param(ANY_DATASET)


@dataclass(frozen=True, kw_only=True)
class DatasetValues(Values):
    """Steps that take only a dataset (quality_check, snapshot_labels, pick_best)."""

    dataset_id: int = param(DATASET)


@dataclass(frozen=True, kw_only=True)
class EmbedValues(Values):
    dataset_id: int | None = param(ANY_DATASET)
    embedding_model: str = param(EMBEDDING_MODEL)
    batch_size: int = param(EMBED_BATCH)


@dataclass(frozen=True, kw_only=True)
class IndexValues(Values):
    embedding_model: str = param(EMBEDDING_MODEL)


@dataclass(frozen=True, kw_only=True)
class TrainValues(Values):
    dataset_id: int = param(DATASET)
    hyper: TrainParams = group(TrainParams)
    min_labels: int = param(MIN_LABELS)
    embedding_model: str = param(EMBEDDING_MODEL)
    force: bool = param(FORCE_TRAIN)
    config_id: int | None = param(TRAIN_CONFIG)


@dataclass(frozen=True, kw_only=True)
class PlanSweepValues(Values):
    dataset_id: int = param(DATASET)
    config_id: int | None = param(TRAIN_CONFIG)


@dataclass(frozen=True, kw_only=True)
class SweepTrialValues(Values):
    dataset_id: int = param(DATASET)
    min_labels: int = param(MIN_LABELS)
    embedding_model: str = param(EMBEDDING_MODEL)


@dataclass(frozen=True, kw_only=True)
class FinetuneValues(Values):
    dataset_id: int = param(DATASET)
    base_model: str = param(BASE_ENCODER)
    tuning: FinetuneParams = group(FinetuneParams)
    min_labels: int = param(MIN_LABELS)


@dataclass(frozen=True, kw_only=True)
class LoopTrainValues(Values):
    dataset_id: int = param(DATASET)
    retune_at_labels: int | None = param(RETUNE_AT)


@dataclass(frozen=True, kw_only=True)
class GateValues(Values):
    dataset_id: int = param(DATASET)
    policy: GatePolicy = group(GatePolicy)


@dataclass(frozen=True, kw_only=True)
class BaselineValues(Values):
    dataset_id: int = param(DATASET)
    backend: str = param(LLM_BACKEND)
    limit: int | None = param(PROBE_LIMIT)


@dataclass(frozen=True, kw_only=True)
class BatchInferenceValues(Values):
    dataset_id: int | None = param(OPTIONAL_DATASET)
    model_id: int | None = param(MODEL_ID)
    inference_run_id: int | None = param(INFERENCE_RUN)


@dataclass(frozen=True, kw_only=True)
class PrelabelValues(Values):
    dataset_id: int = param(DATASET)
    backend: str = param(BACKEND)
    limit: int | None = param(PRELABEL_LIMIT)
    only_new: bool = param(ONLY_NEW)


@dataclass(frozen=True, kw_only=True)
class ScoreValues(Values):
    dataset_id: int = param(DATASET)
    strategy: str = param(STRATEGY)
    diverse_head: int = param(DIVERSE_HEAD)
    limit: int | None = param(SCORE_LIMIT)
    only_unlabeled: bool = param(ONLY_UNLABELED)


@dataclass(frozen=True)
class Step:
    """One DAG task: the job kind it records and the one type of the values it reads."""

    name: str
    values_type: type[Values]

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return self.values_type.specs()

    def values(self, raw: Mapping[str, Any], **given: Any) -> Any:
        """The step's typed values from a run's params (``given`` wins; absent: the default).

        Raises:
            ParamError: a value does not fit its declaration.
        """
        return self.values_type.parse({**raw, **given})


@dataclass(frozen=True)
class Pipeline:
    """A DAG people can trigger: its steps and the parameters its runs take."""

    name: str
    title: str
    description: str
    steps: tuple[str, ...]
    # Default: every parameter of its steps. The nightly loop exposes a chosen few.
    exposed: tuple[ParamSpec, ...] | None = field(default=None)

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        if self.exposed is not None:
            return self.exposed
        seen: dict[str, ParamSpec] = {}
        for step in self.steps:
            for spec in STEPS[step].params:
                if seen.setdefault(spec.name, spec) is not spec:
                    raise ValueError(f"pipeline {self.name}: two declarations named {spec.name!r}; expose one")
        return tuple(seen.values())

    @property
    def dataset_param(self) -> ParamSpec | None:
        return next((p for p in self.params if p.type == "dataset"), None)

    @property
    def needs_dataset(self) -> bool:
        spec = self.dataset_param
        return spec is not None and spec.required

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of a run's conf (the API's body for this pipeline)."""
        return schema_of(self.params)

    def doc_md(self, intro: str | None) -> str:
        """The DAG's documentation: its own text, then its parameters as the catalog declares them."""
        rows = [
            f"| `{s.name}` | {s.type} | {'' if s.default is None else f'`{s.default}`'} | {s.label}"
            f"{': ' + s.help if s.help else ''} |"
            for s in self.params
        ]
        table = "\n".join(["| parameter | type | default | meaning |", "|---|---|---|---|", *rows])
        where = "declared in `include/pipelines/catalog.py` and next to the code they tune"
        return f"{(intro or '').rstrip()}\n\n### Params ({where})\n\n{table}\n"

    def airflow_params(self) -> dict[str, Any]:
        """The DAG's ``params`` (Airflow validates every run's conf against them)."""
        return {spec.name: spec.to_airflow() for spec in self.params}

    def build_conf(self, raw: Mapping[str, Any], *, form: bool = False) -> dict[str, Any]:
        """A run's conf from what a person sent: validated, typed, defaults filled in.

        ``form``: values come from an HTML form, where an unticked checkbox is simply absent
        (so it means false) and unknown fields (the CSRF token) are ignored. From JSON, an
        unknown parameter is an error, so a typo is not silently replaced by a default.

        Raises:
            ParamError: an unknown, missing or invalid parameter (the message names it).
        """
        specs = self.params
        if not form:
            unknown = sorted(set(raw) - {s.name for s in specs})
            if unknown:
                known = ", ".join(s.name for s in specs) or "no parameters"
                raise ParamError(f"unknown parameter {unknown[0]!r}; {self.name} takes: {known}")
        values = dict(raw)
        if form:
            for spec in specs:
                if spec.type == "bool" and spec.name not in raw:
                    values[spec.name] = False
        return parse_values(specs, values)


STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        Step("ls_import", ImportValues),
        Step("ls_export", ExportValues),
        Step("loop_datasets", AnyDatasetValues),
        Step("embed_items", EmbedValues),
        Step("build_index", IndexValues),
        Step("train_classifier", TrainValues),
        Step("plan_sweep", PlanSweepValues),
        Step("sweep_trial", SweepTrialValues),
        Step("pick_best", DatasetValues),
        Step("finetune_encoder", FinetuneValues),
        Step("loop_train", LoopTrainValues),
        Step("gate", GateValues),
        Step("baseline_probe", BaselineValues),
        Step("deidentify", AnyDatasetValues),
        Step("rotate_pii_key", NoValues),
        Step("quality_check", DatasetValues),
        Step("snapshot_labels", DatasetValues),
        Step("batch_inference", BatchInferenceValues),
        Step("prelabel", PrelabelValues),
        Step("score_uncertainty", ScoreValues),
        Step("housekeeping", RetentionPolicy),
    )
}

PIPELINES: dict[str, Pipeline] = {
    pipeline.name: pipeline
    for pipeline in (
        Pipeline(
            "deidentify",
            "De-identify",
            "Replace the personal data of the dataset's new items by its policy, before anyone sees them.",
            ("deidentify",),
        ),
        Pipeline(
            "rotate_pii_key",
            "Rotate PII_KEY",
            "Re-encrypt every de-identification mapping with the new PII_KEY (the old one in PII_KEY_PREVIOUS).",
            ("rotate_pii_key",),
        ),
        Pipeline(
            "ls_import",
            "Import to Label Studio",
            "De-identify new items if the dataset has a policy, then send them to Label Studio as tasks.",
            ("deidentify", "ls_import"),
            exposed=(ANY_DATASET, IMPORT_LIMIT, IMPORT_BATCH),
        ),
        Pipeline(
            "ls_export",
            "Export annotations",
            "Pull annotations that changed in Label Studio into the platform.",
            ("ls_export",),
        ),
        Pipeline(
            "embed_items",
            "Compute embeddings",
            "Embed the dataset's texts (each text once per model) into pgvector.",
            ("embed_items", "build_index"),
        ),
        Pipeline(
            "train_classifier",
            "Train classifier",
            "Train a classifier head on labeled embeddings; promote it only if it beats the current one.",
            ("train_classifier", "gate"),
        ),
        Pipeline(
            "sweep",
            "Hyperparameter sweep",
            "Train every trial of a training config's sweep (each an experiment, on GPU workers) and send the one "
            "with the best validation F1 to the promotion gate.",
            ("plan_sweep", "sweep_trial", "pick_best", "gate"),
        ),
        Pipeline(
            "finetune_encoder",
            "Fine-tune the encoder",
            "Tune the sentence encoder on the dataset's labels (SetFit-style pairs, on GPU workers), re-embed the "
            "dataset with it and train a head on top; promoted only if it beats the current model on the "
            "evaluation set.",
            ("finetune_encoder", "gate"),
        ),
        Pipeline(
            "prelabel",
            "Pre-label",
            "Predict labels for unlabeled tasks and write them to Label Studio as predictions.",
            ("prelabel",),
        ),
        Pipeline(
            "score_uncertainty",
            "Score uncertainty",
            "Score unlabeled tasks so the hardest are labeled (and auto-assigned) first.",
            ("score_uncertainty",),
        ),
        Pipeline(
            "quality_check",
            "Quality check",
            "Duplicates, near-duplicates, lengths, scripts, label balance, suspected label errors and annotator "
            "agreement: a failing report blocks import and training until fixed or overridden.",
            ("quality_check",),
        ),
        Pipeline(
            "snapshot_labels",
            "Snapshot labels",
            "Freeze the dataset's labels as an immutable, versioned snapshot (nothing new when nothing changed).",
            ("snapshot_labels",),
        ),
        Pipeline(
            "batch_inference",
            "Batch inference",
            "Run a registered model (the promoted one by default) over a dataset or an uploaded file: predictions, "
            "probabilities and uncertainty, downloadable as CSV or JSONL.",
            ("batch_inference",),
        ),
        Pipeline(
            "baseline_probe",
            "LLM baseline probe",
            "Ask the configured LLM, zero-shot, to label the evaluation set: a yardstick a classifier can be "
            "required to beat, and a check of its answer format and speed.",
            ("baseline_probe",),
        ),
        Pipeline(
            "housekeeping",
            "Housekeeping",
            "Remove delivered outbox entries, handled webhook events, old job rows and expired inference "
            "results by the retention settings, and re-check every project's webhook.",
            ("housekeeping",),
        ),
        Pipeline(
            "active_learning_nightly",
            "Full active-learning loop",
            "Export, embed, train, gate, pre-label and score, each step skipping when it has nothing to do.",
            (
                "ls_export",
                "loop_datasets",
                "embed_items",
                "build_index",
                "train_classifier",  # entrypoints.loop_train: a head, or the encoder tuned (retune_at_labels)
                "gate",
                "prelabel",
                "score_uncertainty",
            ),
            exposed=(
                ANY_DATASET,
                MODEL_KIND,
                STRATEGY,
                BACKEND,
                MIN_LABELS,
                MIN_F1,
                MIN_GAIN,
                REQUIRE_BASELINE,
                RETUNE_AT,
                BASE_ENCODER,
                PAIR_ITERATIONS,
            ),
        ),
    )
}


class UnknownPipeline(NotFound, KeyError):
    """No pipeline of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``; :class:`UnknownPipeline` names the known ones."""
    try:
        return PIPELINES[name]
    except KeyError:
        raise UnknownPipeline(f"unknown pipeline {name!r}; one of: {', '.join(sorted(PIPELINES))}") from None


def step(name: str) -> Step:
    return STEPS[name]

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

from include.ml.batch import DIVERSE_HEAD
from include.ml.embeddings.names import EMBEDDING_MODEL
from include.ml.gate import GATE_PARAMS, MIN_F1, MIN_GAIN, REQUIRE_BASELINE
from include.ml.prelabel.backends import BACKEND, LLM_BACKENDS
from include.ml.scoring import STRATEGY
from include.ml.training.params import (
    BASE_ENCODER,
    FINETUNE_PARAMS,
    MODEL_KIND,
    PAIR_ITERATIONS,
    RETUNE_AT,
    TRAIN_PARAMS,
)
from include.params import ParamError, ParamSpec, parse_values

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


@dataclass(frozen=True)
class Step:
    """One DAG task: the job kind it records and the parameters it reads."""

    name: str
    params: tuple[ParamSpec, ...]

    def values(self, raw: Mapping[str, Any], **given: Any) -> dict[str, Any]:
        """Typed values for this step from a run's params (``given`` wins; absent: the default).

        Raises:
            ParamError: a value does not fit its declaration.
        """
        return parse_values(self.params, {**raw, **given})


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
        Step("ls_import", (ANY_DATASET, IMPORT_LIMIT, IMPORT_BATCH)),
        Step("ls_export", (ANY_DATASET, FULL_EXPORT)),
        Step("loop_datasets", (ANY_DATASET,)),
        Step("embed_items", (ANY_DATASET, EMBEDDING_MODEL, EMBED_BATCH)),
        Step("build_index", (EMBEDDING_MODEL,)),
        Step("train_classifier", (DATASET, *TRAIN_PARAMS, MIN_LABELS, EMBEDDING_MODEL, FORCE_TRAIN, TRAIN_CONFIG)),
        Step("plan_sweep", (DATASET, TRAIN_CONFIG)),
        Step("sweep_trial", (DATASET, MIN_LABELS, EMBEDDING_MODEL)),
        Step("pick_best", (DATASET,)),
        Step("finetune_encoder", (DATASET, *FINETUNE_PARAMS, MIN_LABELS)),
        Step("loop_train", (DATASET, RETUNE_AT)),
        Step("gate", (DATASET, *GATE_PARAMS)),
        Step("baseline_probe", (DATASET, LLM_BACKEND, PROBE_LIMIT)),
        Step("deidentify", (ANY_DATASET,)),
        Step("quality_check", (DATASET,)),
        Step("snapshot_labels", (DATASET,)),
        Step("batch_inference", (OPTIONAL_DATASET, MODEL_ID, INFERENCE_RUN)),
        Step("prelabel", (DATASET, BACKEND, PRELABEL_LIMIT, ONLY_NEW)),
        Step("score_uncertainty", (DATASET, STRATEGY, DIVERSE_HEAD, SCORE_LIMIT, ONLY_UNLABELED)),
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


def pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``; KeyError names the known ones."""
    try:
        return PIPELINES[name]
    except KeyError:
        raise KeyError(f"unknown pipeline {name!r}; one of: {', '.join(sorted(PIPELINES))}") from None


def step(name: str) -> Step:
    return STEPS[name]

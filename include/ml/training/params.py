"""Training hyperparameters: declared once here, used by the DAGs, the web form, the API and
:func:`include.ml.training.train.train_head`.

No torch or scikit-learn here: DAG files import this at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.ml.training.model import KINDS
from include.params import ParamSpec

DEFAULT_LR = {"mlp": 0.003}

MODEL_KIND = ParamSpec(
    "model_kind",
    "Model kind",
    "choice",
    "logistic",
    choices=KINDS,
    help="logistic: exact fit, strength chosen by cross-validation (the default); mlp: a hidden layer, by epochs",
)
C = ParamSpec(
    "c",
    "Regularisation C (logistic)",
    "float",
    None,
    nullable=True,
    minimum=0,
    exclusive_minimum=True,
    maximum=1e6,
    help="inverse L2 strength; empty: chosen with the class weighting by cross-validated macro F1",
)
EPOCHS = ParamSpec("epochs", "Max epochs (mlp)", "int", 200, minimum=1, maximum=1000)
LR = ParamSpec(
    "lr",
    "Learning rate (mlp)",
    "float",
    None,
    nullable=True,
    minimum=0,
    exclusive_minimum=True,
    maximum=1,
    help=f"empty: {DEFAULT_LR['mlp']}",
)
BATCH_SIZE = ParamSpec("batch_size", "Batch size (mlp)", "int", 64, minimum=1, maximum=8192)
PATIENCE = ParamSpec("patience", "Early-stopping patience (mlp)", "int", 8, minimum=1, maximum=100, help="epochs")
VAL_FRACTION = ParamSpec(
    "val_fraction",
    "Validation share (mlp)",
    "float",
    0.2,
    minimum=0.05,
    maximum=0.5,
    help="held out for early stopping, at least one example of every label",
)
SEED = ParamSpec("seed", "Random seed", "int", 0, minimum=0, maximum=2**31 - 1)

TRAIN_PARAMS = (MODEL_KIND, C, EPOCHS, LR, BATCH_SIZE, PATIENCE, VAL_FRACTION, SEED)


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters of one training run (defaults from the declarations above)."""

    kind: str = MODEL_KIND.default
    epochs: int = EPOCHS.default
    batch_size: int = BATCH_SIZE.default
    lr: float | None = LR.default  # None: DEFAULT_LR for the MLP; unused by the logistic head
    c: float | None = C.default  # None: chosen by cross-validation
    weight_decay: float = 1e-4
    patience: int = PATIENCE.default
    val_fraction: float = VAL_FRACTION.default
    seed: int = SEED.default
    hidden_dim: int = 256
    dropout: float = 0.2

    def __post_init__(self) -> None:
        MODEL_KIND.parse(self.kind)
        EPOCHS.parse(self.epochs)
        BATCH_SIZE.parse(self.batch_size)
        PATIENCE.parse(self.patience)
        VAL_FRACTION.parse(self.val_fraction)
        LR.parse(self.lr)
        C.parse(self.c)
        if self.lr is None and self.kind in DEFAULT_LR:
            object.__setattr__(self, "lr", DEFAULT_LR[self.kind])

    def values(self) -> dict[str, object]:
        """As pipeline values (the inverse of :meth:`from_values`)."""
        return {
            MODEL_KIND.name: self.kind,
            C.name: self.c,
            EPOCHS.name: self.epochs,
            LR.name: self.lr,
            BATCH_SIZE.name: self.batch_size,
            PATIENCE.name: self.patience,
            VAL_FRACTION.name: self.val_fraction,
            SEED.name: self.seed,
        }

    @classmethod
    def from_values(cls, values: dict[str, object]) -> TrainParams:
        """From parsed pipeline values (``model_kind`` is the pipeline's name for ``kind``)."""
        return cls(
            kind=str(values[MODEL_KIND.name]),
            epochs=int(values[EPOCHS.name]),  # type: ignore[call-overload]
            batch_size=int(values[BATCH_SIZE.name]),  # type: ignore[call-overload]
            lr=values[LR.name],  # type: ignore[arg-type]
            c=values[C.name],  # type: ignore[arg-type]
            patience=int(values[PATIENCE.name]),  # type: ignore[call-overload]
            val_fraction=float(values[VAL_FRACTION.name]),  # type: ignore[arg-type]
            seed=int(values[SEED.name]),  # type: ignore[call-overload]
        )


# -- encoder fine-tuning (include.ml.training.finetune, the finetune_encoder pipeline) --------------
BASE_ENCODER = ParamSpec(
    "base_model",
    "Encoder to fine-tune",
    "str",
    "all-MiniLM-L6-v2",
    help="the offline default, st:<local model directory> or ft:<an encoder fine-tuned here before>",
    pattern=r"all-MiniLM-L6-v2|st:\S.*|ft:[\w.-]+",
)
PAIR_ITERATIONS = ParamSpec(
    "pair_iterations",
    "Pairs per labeled text",
    "int",
    20,
    minimum=1,
    maximum=100,
    help="SetFit's iterations: each gives every labeled text one same-label and one other-label pair",
)
MAX_PAIRS = ParamSpec("max_pairs", "Most pairs", "int", 12_000, minimum=10, maximum=1_000_000)
FINETUNE_EPOCHS = ParamSpec("finetune_epochs", "Epochs over the pairs", "int", 1, minimum=1, maximum=20)
FINETUNE_LR = ParamSpec(
    "finetune_lr", "Learning rate (encoder)", "float", 2e-5, minimum=0, exclusive_minimum=True, maximum=0.01
)
FINETUNE_BATCH = ParamSpec("finetune_batch_size", "Pairs per step", "int", 16, minimum=1, maximum=512)

RETUNE_AT = ParamSpec(
    "retune_at_labels",
    "Retune the encoder at labels",
    "int",
    0,
    minimum=0,
    maximum=10_000_000,
    help="0: the dataset's own setting (automatic unless set on its page: at 100 labeled tasks on a GPU worker, "
    "never on CPU); N: the loop fine-tunes the encoder once the "
    "dataset has N labeled tasks, and again each time they double; in between, heads train on the tuned encoder",
)

FINETUNE_PARAMS = (BASE_ENCODER, PAIR_ITERATIONS, MAX_PAIRS, FINETUNE_EPOCHS, FINETUNE_LR, FINETUNE_BATCH, SEED)

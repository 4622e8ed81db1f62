"""Training hyperparameters: declared once here, used by the DAGs, the web form, the API and
:func:`include.ml.training.train.train_head`.

No torch or scikit-learn here: DAG files import this at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.ml.training.model import KINDS
from include.params import ParamSpec

# Unit-length embeddings give small logits: a linear head needs a larger step than an MLP.
DEFAULT_LR = {"logistic": 0.05, "mlp": 0.003}

MODEL_KIND = ParamSpec("model_kind", "Model kind", "choice", "mlp", choices=KINDS, help="the classifier head")
EPOCHS = ParamSpec("epochs", "Max epochs", "int", 200, minimum=1, maximum=1000)
LR = ParamSpec(
    "lr",
    "Learning rate",
    "float",
    None,
    nullable=True,
    minimum=0,
    exclusive_minimum=True,
    maximum=1,
    help="empty: " + ", ".join(f"{lr} for {kind}" for kind, lr in DEFAULT_LR.items()),
)
BATCH_SIZE = ParamSpec("batch_size", "Batch size", "int", 64, minimum=1, maximum=8192)
PATIENCE = ParamSpec("patience", "Early-stopping patience", "int", 8, minimum=1, maximum=100, help="epochs")
VAL_FRACTION = ParamSpec("val_fraction", "Validation share", "float", 0.2, minimum=0.05, maximum=0.5)
SEED = ParamSpec("seed", "Random seed", "int", 0, minimum=0, maximum=2**31 - 1)

TRAIN_PARAMS = (MODEL_KIND, EPOCHS, LR, BATCH_SIZE, PATIENCE, VAL_FRACTION, SEED)


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters of one training run (defaults from the declarations above)."""

    kind: str = MODEL_KIND.default
    epochs: int = EPOCHS.default
    batch_size: int = BATCH_SIZE.default
    lr: float | None = LR.default  # None: a default that suits the kind (see DEFAULT_LR)
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
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.kind])

    @classmethod
    def from_values(cls, values: dict[str, object]) -> TrainParams:
        """From parsed pipeline values (``model_kind`` is the pipeline's name for ``kind``)."""
        return cls(
            kind=str(values[MODEL_KIND.name]),
            epochs=int(values[EPOCHS.name]),  # type: ignore[call-overload]
            batch_size=int(values[BATCH_SIZE.name]),  # type: ignore[call-overload]
            lr=values[LR.name],  # type: ignore[arg-type]
            patience=int(values[PATIENCE.name]),  # type: ignore[call-overload]
            val_fraction=float(values[VAL_FRACTION.name]),  # type: ignore[arg-type]
            seed=int(values[SEED.name]),  # type: ignore[call-overload]
        )

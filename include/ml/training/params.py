"""Training hyperparameters: declared once here, used by the DAGs, the web form, the API and
:func:`include.ml.training.train.train_head`.

No torch or scikit-learn here: DAG files import this at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from include.ml.training.model import KINDS
from include.params import ParamSpec, Values, param

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


@dataclass(frozen=True, kw_only=True)
class TrainParams(Values):
    """Hyperparameters of one training run: each field is declared by its spec above (the DAGs'
    ``Param``s, the forms and training configs all read the same specs)."""

    kind: str = param(MODEL_KIND)
    c: float | None = param(C)  # None: chosen by cross-validation
    epochs: int = param(EPOCHS)
    lr: float | None = param(LR)  # None: DEFAULT_LR for the MLP; unused by the logistic head
    batch_size: int = param(BATCH_SIZE)
    patience: int = param(PATIENCE)
    val_fraction: float = param(VAL_FRACTION)
    seed: int = param(SEED)
    # not set by people: fixed parts of the recipe
    weight_decay: float = 1e-4
    hidden_dim: int = 256
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr is None and self.kind in DEFAULT_LR:
            object.__setattr__(self, "lr", DEFAULT_LR[self.kind])

    def values(self) -> dict[str, object]:
        """As pipeline values, by parameter name (``model_kind`` for ``kind``)."""
        return self.as_params()

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> TrainParams:
        """From pipeline values by parameter name (absent ones take their defaults)."""
        return cls.parse(values)


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
    None,
    nullable=True,
    minimum=20,
    maximum=10_000_000,
    also=(0,),
    empty="the dataset's",
    help="empty: the dataset's own setting (automatic unless set on its page: at 100 labeled tasks on a GPU worker, "
    "never on CPU); 0: never; N: the loop fine-tunes the encoder once the dataset has N labeled tasks, and again "
    "each time they double; in between, heads train on the tuned encoder",
)


@dataclass(frozen=True, kw_only=True)
class FinetuneParams(Values):
    """How the encoder is tuned (SetFit's defaults; include.ml.training.finetune). The fields
    have short names; their parameters are prefixed, as a run's conf also holds a head's."""

    pair_iterations: int = param(PAIR_ITERATIONS)  # per labeled text: one same-label and one other-label pair
    max_pairs: int = param(MAX_PAIRS)  # cap, so 2,000 labels do not make 80,000 pairs
    epochs: int = param(FINETUNE_EPOCHS)
    batch_size: int = param(FINETUNE_BATCH)
    lr: float = param(FINETUNE_LR)
    seed: int = param(SEED)
    warmup: float = 0.1  # share of steps with a linear warm-up

    def values(self) -> dict[str, object]:
        """By field name, as experiments record them."""
        return asdict(self)


FINETUNE_PARAMS = (BASE_ENCODER, *FinetuneParams.specs())

"""Configuration of the document-002 reproduction: the variants, the dataclass, the entry parameters.

Importing this module loads only the standard library (and `projects.common`), so that `train.py`
can reject a bad parameter before torch, Lightning or MLflow are imported.

Variants (entry point `ae_<variant>`):
- `rnn_baseline`: the note's first model (vanilla RNN, 64 hidden, 16-d bottleneck, MSE, the
  four-phase curriculum with per-time-step teacher forcing, orthogonal/Xavier init).
- `rnn_scaled`: its "critical fix", hidden 512, beside a nested 64-hidden reference child.
- `lstm_attention_cosine`: the final model (LSTM, 512 hidden, 8-head encoder-decoder attention,
  90 % cosine + 10 % MSE).
- `teacher_forcing_per_batch`: a parent run, the note's bug (one coin flip per batch) and the fixed
  schedule (per time step) as nested children over seeds.
- `decomposition`: a parent run, MSE vs hybrid cosine loss x with vs without attention, over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from projects.common.config import RunConfig
from projects.common.params import (
    Param,
    ParamError,
    choice,
    diagnostics_params,
    integer,
    optional,
    optional_file,
    real,
)
from projects.common.spec import ProjectSpec

__all__ = ["SPEC", "PARAMS", "VARIANTS", "VECTORS", "INITS", "DOCUMENT_CURRICULUM", "PoetryRunConfig", "check_inputs",
           "curriculum_phases"]

VARIANTS: tuple[str, ...] = ("rnn_baseline", "rnn_scaled", "lstm_attention_cosine", "teacher_forcing_per_batch",
                             "decomposition")
VECTORS: tuple[str, ...] = ("minilm", "glove50")
INITS: tuple[str, ...] = ("orthogonal", "default")

#: Per variant: the model's cell, hidden size, attention and loss (`AEConfig` fields).
MODELS: dict[str, dict[str, object]] = {
    "rnn_baseline": {"cell": "rnn", "hidden": 64, "attention": False, "loss": "mse"},
    "rnn_scaled": {"cell": "rnn", "hidden": 512, "attention": False, "loss": "mse"},
    "lstm_attention_cosine": {"cell": "lstm", "hidden": 512, "attention": True, "loss": "hybrid"},
    "teacher_forcing_per_batch": {"cell": "rnn", "hidden": 64, "attention": False, "loss": "mse"},
    "decomposition": {"cell": "lstm", "hidden": 64, "attention": False, "loss": "mse"},
}
#: Quick defaults (each entry point within 10 minutes on two CPU cores); the note trained the baseline
#: 30 epochs and the final model 100 (`-P epochs=100`). A run shorter than the note's 30-epoch
#: curriculum goes through the same four phases, each shortened in proportion (`curriculum_phases`).
DEFAULT_EPOCHS = {"rnn_baseline": 30, "rnn_scaled": 12, "lstm_attention_cosine": 8,
                  "teacher_forcing_per_batch": 10, "decomposition": 6}
#: The note's curriculum: (epochs, teacher-forcing ratio, maximum length) per phase, 30 epochs in all.
DOCUMENT_CURRICULUM: tuple[tuple[int, float, int], ...] = ((7, 0.9, 20), (8, 0.7, 30), (8, 0.3, 40), (7, 0.1, 50))

SPEC = ProjectSpec(
    name="poetry_ae", document="002_295b5450c3336e21.txt", registered_model="poetry-ae",
    claims_file=Path(__file__).with_name("claims.yaml"), selection_metric="val/token_cosine", mode="max",
    baseline="mean/token_cosine",  # the cosine of predicting the training set's mean word vector
    citations={
        "GRAD_VANISHING": "the note monitored layer-wise gradients for vanishing (< 1e-7) and exploding "
                          "(> 100) and credits orthogonal initialization of the recurrent weights with "
                          "\"improved gradient propagation through time\".",
        "GRAD_EXPLODING": "the note clipped gradients at 1.0 and watched for exploding gradients (> 100).",
    })


@dataclass(frozen=True)
class PoetryRunConfig(RunConfig):
    """One run of document 002's experiments. Defaults are the quick runs (each entry point within
    a few minutes on two CPU cores from an empty cache); the README gives the note's full scale."""

    epochs: int | None = None             # None: the variant's (30: the note's baseline schedule)
    lr: float = 1e-3                      # Adam, the note's
    experiment_name: str = SPEC.name
    variant: str = "rnn_baseline"
    batch_size: int = 16                  # the note's
    vectors: str = "minilm"               # word vectors: minilm (384-d) | glove50 (50-d)
    vectors_path: str | None = None       # your GloVe text file (e.g. glove.6B.300d.txt) instead
    vector_scale: str = "rms"             # rms: the table divided by its RMS coordinate; none: raw
    poems_path: str | None = None         # your poems (.txt or .json) instead of fortunes' songs-poems
    max_len: int = 50                     # tokens per chunk (the curriculum's last phase)
    overlap: int = 10                     # tokens shared by consecutive chunks of a poem
    hidden: int | None = None             # None: the variant's (64; 512 for the scaled and final models)
    bottleneck: int = 16
    init: str = "orthogonal"              # orthogonal recurrent + Xavier in/out, or PyTorch's default
    n_seeds: int = 2                      # comparisons: children per configuration, seeds seed .. seed+n-1
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ParamError("variant", self.variant, f"one of {', '.join(VARIANTS)}")
        if self.overlap >= self.max_len:
            raise ParamError("overlap", self.overlap, f"an integer below max_len={self.max_len}")

    @property
    def entry_point(self) -> str:
        return f"ae_{self.variant}"

    @property
    def n_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.variant]

    @property
    def is_comparison(self) -> bool:
        return self.variant in ("teacher_forcing_per_batch", "decomposition")

    def model_fields(self) -> dict[str, object]:
        """The variant's `AEConfig` fields, with this run's sizes, init, learning rate and curriculum."""
        fields = dict(MODELS[self.variant])
        if self.hidden is not None:
            fields["hidden"] = self.hidden
        return {**fields, "bottleneck": self.bottleneck, "init": self.init, "lr": self.lr,
                "phases": curriculum_phases(self.n_epochs, self.max_len)}

    def child(self, **changes: object) -> "PoetryRunConfig":
        return replace(self, **changes)


def curriculum_phases(epochs: int, max_len: int) -> tuple[tuple[int, float, int], ...]:
    """The note's four phases for a run of `epochs`: as written for 30 epochs or more (the last phase
    then continues), each phase shortened in proportion (at least one epoch) for a shorter run, so it
    still ends in the last phase (low teacher forcing, full length). Lengths are capped at `max_len`."""
    total = sum(n for n, _, _ in DOCUMENT_CURRICULUM)
    scale = min(1.0, epochs / total)
    return tuple((max(1, round(n * scale)), ratio, min(length, max_len)) for n, ratio, length in DOCUMENT_CURRICULUM)


_DEFAULTS = PoetryRunConfig()

# The entry parameters, in the order of MLproject. mlflow run passes each as text.
PARAMS: tuple[Param, ...] = (
    Param("variant", choice(*VARIANTS), _DEFAULTS.variant, "which experiment of document 002"),
    Param("epochs", optional(integer(minimum=1, maximum=100_000)), None,
          "training epochs; empty = the variant's (30 baseline, 12 scaled, 8 final, 10 and 6 comparisons)"),
    Param("batch_size", integer(minimum=1, maximum=65_536), str(_DEFAULTS.batch_size), "batch size"),
    Param("lr", real(minimum=0.0, maximum=10.0, exclusive_minimum=True), str(_DEFAULTS.lr), "Adam learning rate"),
    Param("seed", integer(minimum=0, maximum=2**32 - 1), str(_DEFAULTS.seed), "seed (comparisons: the first)"),
    Param("vectors", choice(*VECTORS), _DEFAULTS.vectors, "word vectors: minilm (384-d) or glove50 (50-d)"),
    Param("vectors_path", optional_file("a path to an existing GloVe-format text file"), None,
          "your word vectors (glove.6B.300d.txt format); empty = vectors"),
    Param("vector_scale", choice("rms", "none"), _DEFAULTS.vector_scale,
          "rms: word vectors divided by the table's RMS coordinate (cosines unchanged); none: raw"),
    Param("poems_path", optional_file("a path to an existing poems file (.txt or .json)"), None,
          "your poems; empty = the fortunes package's songs-poems"),
    Param("max_len", integer(minimum=2, maximum=10_000), str(_DEFAULTS.max_len), "tokens per chunk"),
    Param("overlap", integer(minimum=0, maximum=9_999), str(_DEFAULTS.overlap), "tokens shared by neighbouring chunks"),
    Param("hidden", optional(integer(minimum=1, maximum=16_384)), None, "hidden size; empty = the variant's"),
    Param("bottleneck", integer(minimum=1, maximum=4096), str(_DEFAULTS.bottleneck), "latent dimensions"),
    Param("init", choice(*INITS), _DEFAULTS.init, "orthogonal (the note's) or PyTorch's default initialization"),
    Param("n_seeds", integer(minimum=1, maximum=100), str(_DEFAULTS.n_seeds), "comparisons: seeds per configuration"),
    *diagnostics_params(_DEFAULTS.log_every, _DEFAULTS.policy),
)


def check_inputs(config: PoetryRunConfig) -> None:
    """Read the files the config names, so a bad one is a parameter error, not a failed run.

    Raises:
        ParamError: a word-vector or poems file that cannot be read, or poems with no usable tokens.
    """
    if config.vectors_path or config.poems_path:
        from projects.poetry_ae.data import check_user_data

        check_user_data(config)

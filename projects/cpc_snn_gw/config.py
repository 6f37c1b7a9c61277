"""Configuration of the document-000 reproduction: the variants, the dataclass, the entry parameters.

Importing this module loads only the standard library (and `projects.common.params`), so that
`train.py` can reject a bad parameter before JAX, Flax or MLflow are imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projects.common.config import RunConfig
from projects.common.params import (Param, ParamError, boolean, choice, diagnostics_params, integer, optional,
                                    optional_file, real)
from projects.common.spec import ProjectSpec

__all__ = ["SPEC", "VARIANTS", "COMPARISONS", "PARAMS", "CpcGwConfig", "check_inputs"]

SPEC = ProjectSpec(name="cpc_snn_gw", document="000_940c272a91a05c21.txt", registered_model="cpc-snn-gw",
                   claims_file=Path(__file__).with_name("claims.yaml"),
                   selection_metric="best/val_auc", mode="max",  # ROC AUC of the kept parameters on validation
                   baseline=0.5,  # ROC AUC of a detector that guesses: chance whatever the class balance
                   citations={
                       "NORM_GRAD_ATTENUATION": "L2-normalizing the CPC latents (z / |z|) killed the gradients; "
                                                "removing it (fix #2) let the model learn.",
                       "NORM_ERASES_MAGNITUDE": "the L2 normalization of the CPC latents threw their magnitudes "
                                                "away and was removed (fix #2).",
                   })


#: The rows of the document's diagnosis table; the models and learning rates are in
#: `jax_modules.cpc_snn_gw.variants`.
VARIANTS: dict[str, str] = {
    "cpc_original": "Original CPC-SNN: CPC(64) + L2 + Spike + SNN + Multi-task",
    "cpc_simplified": "Simplified CPC: CPC(64) + L2 + Direct classifier + Multi-task",
    "aresgw_baseline": "AResGW-style JAX: DAIN + ResNet + Direct, single-task",
    "cpc_fixed": "Fixed CPC: CPC(256) + No L2 + Single-task",
    # Comparisons: a parent run with a nested child per configuration and seed.
    "cpc_ablation": "Ablation: each fix of the document reverted alone from Fixed CPC",
    "cpc_snn_progressive": "Phase 2: spike bridge, then LIF SNN, then auxiliary InfoNCE added to Fixed CPC",
    # Not in the document: the best network, trained as the field trains (issue 14).
    "gw_best": "Best: slim AResGW-style ResNet, receptive field wider than the window, fresh windows every epoch",
}
COMPARISONS = ("cpc_ablation", "cpc_snn_progressive")
SINGLE_EPOCHS, COMPARISON_EPOCHS = 20, 10  # a comparison trains n_seeds x configurations children
#: The auxiliary InfoNCE weight of `cpc_snn_progressive`'s last stage: a tenth of the BCE, where the
#: original's 1.0 let InfoNCE take over the encoder (the note's "multi-task conflicts").
AUX_INFONCE_WEIGHT = 0.1
#: Variants trained on fresh windows every epoch unless `fresh_data` says otherwise (simulated data only):
#: aresgw_baseline memorises its 2000 cached windows (train acc 1.00, best val AUC 0.57) where fresh
#: windows lift its best val AUC to 0.68 at the quick default (README, document 000).
FRESH_BY_DEFAULT = frozenset({"aresgw_baseline", "gw_best"})
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class CpcGwConfig(RunConfig):
    """One run of document 000's experiment. Defaults are the quick run: a few minutes on two CPU
    cores from an empty cache, data generation included."""

    epochs: int | None = None      # None: 20 for a single run, 10 for each child of a comparison
    lr: float | None = None        # None: the document's rate for the variant (comparisons: each child's)
    log_every: int = 20
    experiment_name: str = SPEC.name
    variant: str = "cpc_fixed"
    n_train: int = 2000            # simulated windows per split, half with an injection
    n_val: int = 500
    n_test: int = 2000             # 1000 noise windows: false-alarm rates down to 1e-3 are resolved
    snr_min: float = 5.0           # optimal network SNR of injections, drawn uniformly
    snr_max: float = 15.0
    batch_size: int = 32
    data_path: str | None = None   # an MLGWSC-1 strain file (HDF5) instead of simulated data
    injections_path: str | None = None  # its injection file (labels); required with data_path
    mf_bank: int = 8               # matched-filter reference: an mf_bank x mf_bank mass grid; 0 = none
    n_seeds: int = 3               # comparisons: children per configuration, seeds seed .. seed+n-1
    # Training windows drawn anew every epoch (noise, sky, orientation, arrival, SNR) around a bank of
    # waveforms generated once; n_train is then the windows per epoch. Validation and test stay cached.
    fresh_data: bool | None = None      # None: the variant's default (FRESH_BY_DEFAULT)
    waveform_bank: int = 2000           # waveforms fresh windows are drawn around
    train_snr_min: float | None = None  # fresh windows' SNR range; None: snr_min / snr_max
    train_snr_max: float | None = None
    curriculum_epochs: int = 0          # fresh windows: the SNR range falls from curriculum_factor x to 1 x
    curriculum_factor: float = 2.0      # over this many epochs (0: no curriculum)
    lr_schedule: str = "constant"       # or "cosine": decay over the run (gw_best's full-scale run)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ParamError("variant", self.variant, f"one of {', '.join(VARIANTS)}")
        if not self.snr_min < self.snr_max:
            raise ParamError("snr_max", self.snr_max, f"a number > snr_min = {self.snr_min}")
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) % 2:
                raise ParamError(name, getattr(self, name), "an even integer >= 2 (half the windows hold a signal)")
        if self.is_comparison and self.lr is not None:
            raise ParamError("lr", self.lr, f"empty for {self.variant}: each of its configurations trains at its "
                             "own rate")
        if self.data_path is None and self.batch_size > self.n_train:
            raise ParamError("batch_size", self.batch_size, f"an integer <= n_train = {self.n_train}")
        if (self.data_path is None) != (self.injections_path is None):
            missing = "injections_path" if self.injections_path is None else "data_path"
            raise ParamError(missing, "", "a path to an existing HDF5 file: data_path (strain) and "
                             "injections_path (labels) go together")
        self._check_training()

    def _check_training(self) -> None:
        if self.fresh_data and self.data_path is not None:
            raise ParamError("fresh_data", self.fresh_data, "false with data_path (fresh windows are simulated)")
        if not self.uses_fresh_data:
            for name in ("train_snr_min", "train_snr_max"):
                if getattr(self, name) is not None:
                    raise ParamError(name, getattr(self, name), "empty unless fresh_data is true (cached training "
                                     "windows have SNR snr_min to snr_max)")
            if self.curriculum_epochs:
                raise ParamError("curriculum_epochs", self.curriculum_epochs, "0 unless fresh_data is true")
        low, high = self.train_snr
        if not 0 < low < high:
            raise ParamError("train_snr_max", high, f"a number > train_snr_min = {low}")
        if not self.curriculum_factor >= 1:
            raise ParamError("curriculum_factor", self.curriculum_factor, "a number >= 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ParamError("lr_schedule", self.lr_schedule, f"one of {', '.join(LR_SCHEDULES)}")

    @property
    def uses_fresh_data(self) -> bool:
        """Whether training windows are drawn anew every epoch: `fresh_data`, or the variant's default
        (simulated data only)."""
        if self.fresh_data is not None:
            return self.fresh_data
        return self.variant in FRESH_BY_DEFAULT and self.data_path is None

    @property
    def train_snr(self) -> tuple[float, float]:
        """The fresh training windows' SNR range after the curriculum."""
        low = self.snr_min if self.train_snr_min is None else self.train_snr_min
        return low, self.snr_max if self.train_snr_max is None else self.train_snr_max

    def training_snr(self, epoch: int) -> tuple[float, float]:
        """The SNR range of epoch `epoch`'s fresh windows (epochs count from 1): `train_snr` times a factor
        falling linearly from `curriculum_factor` at epoch 1 to 1 at epoch `curriculum_epochs` and after."""
        low, high = self.train_snr
        if self.curriculum_epochs <= 1:
            return low, high
        progress = min(max(epoch - 1, 0) / (self.curriculum_epochs - 1), 1.0)
        factor = self.curriculum_factor + (1.0 - self.curriculum_factor) * progress
        return low * factor, high * factor

    @property
    def is_comparison(self) -> bool:
        """A parent run of nested children (`cpc_ablation`, `cpc_snn_progressive`)."""
        return self.variant in COMPARISONS

    @property
    def n_epochs(self) -> int:
        """`epochs`, or the default of a single run or of a comparison's child."""
        if self.epochs is not None:
            return self.epochs
        return COMPARISON_EPOCHS if self.is_comparison else SINGLE_EPOCHS

    @property
    def learning_rate(self) -> float:
        """The Adam learning rate: `lr`, or the document's for the variant (NaN for a comparison,
        whose children each have their own)."""
        from jax_modules.cpc_snn_gw.variants import variant_learning_rate

        if self.lr is not None:
            return self.lr
        return math.nan if self.is_comparison else variant_learning_rate(self.variant)

    def to_params(self) -> dict[str, Any]:
        """Everything, flat, for MLflow params; `learning_rate` is the rate used (`lr` may be empty:
        `mlflow run` logs each -P value as given, and MLflow params cannot change)."""
        return {**super().to_params(), "learning_rate": self.learning_rate}


_DEFAULTS = CpcGwConfig()
_COUNT = integer(minimum=2, maximum=1_000_000)
_SNR = real(minimum=0.0, maximum=1000.0, exclusive_minimum=True)

# The entry parameters, in the order of MLproject. mlflow run passes each as text.
PARAMS: tuple[Param, ...] = (
    Param("variant", choice(*VARIANTS), _DEFAULTS.variant, "which row of document 000's table"),
    Param("n_train", _COUNT, str(_DEFAULTS.n_train), "simulated training windows (half with a signal)"),
    Param("n_val", _COUNT, str(_DEFAULTS.n_val), "simulated validation windows"),
    Param("n_test", _COUNT, str(_DEFAULTS.n_test), "simulated test windows"),
    Param("snr_min", real(minimum=0.0, maximum=1000.0, exclusive_minimum=True), str(_DEFAULTS.snr_min),
          "lowest optimal network SNR of an injection"),
    Param("snr_max", real(minimum=0.0, maximum=1000.0, exclusive_minimum=True), str(_DEFAULTS.snr_max),
          "highest optimal network SNR of an injection"),
    Param("epochs", optional(integer(minimum=1, maximum=100_000)), None,
          f"training epochs; empty = {SINGLE_EPOCHS} ({COMPARISON_EPOCHS} per child of a comparison)"),
    Param("batch_size", integer(minimum=2, maximum=65_536), str(_DEFAULTS.batch_size), "batch size"),
    Param("lr", optional(real(minimum=0.0, maximum=1.0, exclusive_minimum=True)), None,
          "Adam learning rate; empty = the document's for the variant"),
    Param("seed", integer(minimum=0, maximum=2**31 - 1), str(_DEFAULTS.seed), "seed of everything"),
    Param("data_path", optional_file("a path to an existing MLGWSC-1 strain file (HDF5)"), None,
          "an MLGWSC-1 strain file to use instead of simulated data; empty = simulated"),
    Param("injections_path", optional_file("a path to an existing MLGWSC-1 injection file (HDF5)"), None,
          "the MLGWSC-1 injection file that labels data_path's windows"),
    Param("mf_bank", integer(minimum=0, maximum=40), str(_DEFAULTS.mf_bank),
          "matched-filter reference on the test windows: templates on an N x N mass grid; 0 = none"),
    Param("n_seeds", integer(minimum=1, maximum=100), str(_DEFAULTS.n_seeds),
          "comparisons: seeds per configuration (seed .. seed + n_seeds - 1)"),
    Param("fresh_data", optional(boolean()), None,
          "draw new training windows every epoch (n_train per epoch); empty = the variant's default"),
    Param("waveform_bank", integer(minimum=1, maximum=20_000), str(_DEFAULTS.waveform_bank),
          "fresh data: waveforms generated once (32 kB each in memory), re-projected and re-noised every epoch"),
    Param("train_snr_min", optional(_SNR), None, "fresh data: lowest training SNR; empty = snr_min"),
    Param("train_snr_max", optional(_SNR), None, "fresh data: highest training SNR; empty = snr_max"),
    Param("curriculum_epochs", integer(minimum=0, maximum=100_000), str(_DEFAULTS.curriculum_epochs),
          "fresh data: epochs over which the training SNRs fall from curriculum_factor x to 1 x; 0 = none"),
    Param("curriculum_factor", real(minimum=1.0, maximum=100.0), str(_DEFAULTS.curriculum_factor),
          "fresh data: the curriculum's first SNRs as a multiple of the training SNR range"),
    Param("lr_schedule", choice(*LR_SCHEDULES), _DEFAULTS.lr_schedule,
          "the learning rate: constant, or cosine decay over the run"),
    *diagnostics_params(_DEFAULTS.log_every, _DEFAULTS.policy),
)


def check_inputs(config: CpcGwConfig) -> None:
    """Read the user's MLGWSC-1 files whole (streamed, one block in memory) and cut one window, so a
    damaged or malformed file is a parameter error before any run, not a failure minutes into one."""
    if not config.data_path:
        return
    from jax_modules.gw_data.mlgwsc import MLGWSCFormatError, load_mlgwsc
    from jax_modules.gw_data.mlgwsc_check import check_injections, check_strain

    def refused(name: str, exc: MLGWSCFormatError) -> ParamError:
        return ParamError(name, getattr(config, name), "an MLGWSC-1 HDF5 file", problem=str(exc))

    try:
        strain = check_strain(config.data_path)
        windows = load_mlgwsc(config.data_path, max_windows=1)  # segment lengths for the run's window
    except MLGWSCFormatError as exc:
        raise refused("data_path", exc) from None
    if config.injections_path:
        try:
            check_injections(config.injections_path, strain)
        except MLGWSCFormatError as exc:
            raise refused("injections_path", exc) from None
    if len(windows) == 0:
        raise ParamError("data_path", config.data_path, "an MLGWSC-1 file with at least one window")

"""Configuration of the document-000 reproduction: the variants, the dataclass, the entry parameters.

Importing this module loads only the standard library (and `projects.common.params`), so that
`train.py` can reject a bad parameter before JAX, Flax or MLflow are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projects.common.config import RunConfig
from projects.common.params import (Param, ParamError, choice, diagnostics_params, integer, optional, optional_file,
                                    real)
from projects.common.spec import ProjectSpec

__all__ = ["SPEC", "VARIANTS", "PARAMS", "CpcGwConfig", "check_inputs"]

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
}


@dataclass(frozen=True)
class CpcGwConfig(RunConfig):
    """One run of document 000's experiment. Defaults are the quick run: a few minutes on two CPU
    cores from an empty cache, data generation included."""

    epochs: int = 20
    lr: float | None = None        # None: the document's rate for the variant
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

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ParamError("variant", self.variant, f"one of {', '.join(VARIANTS)}")
        if not self.snr_min < self.snr_max:
            raise ParamError("snr_max", self.snr_max, f"a number > snr_min = {self.snr_min}")
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) % 2:
                raise ParamError(name, getattr(self, name), "an even integer >= 2 (half the windows hold a signal)")
        if self.data_path is None and self.batch_size > self.n_train:
            raise ParamError("batch_size", self.batch_size, f"an integer <= n_train = {self.n_train}")
        if (self.data_path is None) != (self.injections_path is None):
            missing = "injections_path" if self.injections_path is None else "data_path"
            raise ParamError(missing, "", "a path to an existing HDF5 file: data_path (strain) and "
                             "injections_path (labels) go together")

    @property
    def learning_rate(self) -> float:
        """The Adam learning rate: `lr`, or the document's for the variant."""
        from jax_modules.cpc_snn_gw.variants import variant_learning_rate

        return self.lr if self.lr is not None else variant_learning_rate(self.variant)

    def to_params(self) -> dict[str, Any]:
        """Everything, flat, for MLflow params; `learning_rate` is the rate used (`lr` may be empty:
        `mlflow run` logs each -P value as given, and MLflow params cannot change)."""
        return {**super().to_params(), "learning_rate": self.learning_rate}


_DEFAULTS = CpcGwConfig()
_COUNT = integer(minimum=2, maximum=1_000_000)

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
    Param("epochs", integer(minimum=1, maximum=100_000), str(_DEFAULTS.epochs), "training epochs"),
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

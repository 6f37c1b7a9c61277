"""Configuration of the document-004 reproduction: the variants, the dataclass, the entry parameters.

Importing this module loads only the standard library (and `projects.common`), so that `train.py`
can reject a bad parameter before torch, Lightning or MLflow are imported.

Variants (entry points):
- `original` (`fixmatch_pu_original`): the document's first settings: prior 0.3, confidence
  threshold 0.95, lr 1e-3.
- `debugged` (`fixmatch_pu_debugged`): its `fixmatch_pu_debugged.yaml`: the prior the data imply,
  threshold 0.75, lr 5e-5, consistency weight 0.3 ramped up over 30 epochs.
- `v2` (`fixmatch_pu_v2`): its `fixmatch_pu_fixed_v2.yaml`, the debugged settings made "even more
  conservative": lr 1e-5, gradient clipping 0.5, accumulation over 4 batches, 10 warm-up epochs.
- `supervised_baseline`: its learnability test (AUC > 0.6) as a parent run, with the same network
  trained on the labels alone (PN: labeled particles against everything unlabeled) beside Topaz's
  GE-binomial, nnPU without FixMatch, and FixMatch + nnPU with the debugged settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from projects.common.config import RunConfig
from projects.common.params import (
    Param,
    ParamError,
    choice,
    diagnostics_params,
    integer,
    optional,
    optional_dir,
    optional_file,
    real,
)
from projects.common.spec import ProjectSpec

__all__ = ["SPEC", "PARAMS", "VARIANTS", "VARIANT_SETTINGS", "PEERS", "FixMatchPURunConfig", "check_inputs"]

VARIANTS: tuple[str, ...] = ("original", "debugged", "v2", "supervised_baseline")
ENTRY_POINTS = {"original": "fixmatch_pu_original", "debugged": "fixmatch_pu_debugged", "v2": "fixmatch_pu_v2",
                "supervised_baseline": "supervised_baseline"}

#: The document's settings per variant; "data" as prior: the share of particles among the unlabeled
#: training patches. clip None: no clipping.
VARIANT_SETTINGS: dict[str, dict[str, Any]] = {
    "original": dict(prior=0.3, threshold=0.95, lr=1e-3, consistency_weight=1.0, rampup_epochs=0,
                     warmup_epochs=0, clip=None, accumulate=1),
    "debugged": dict(prior="data", threshold=0.75, lr=5e-5, consistency_weight=0.3, rampup_epochs=30,
                     warmup_epochs=0, clip=None, accumulate=1),
    "v2": dict(prior="data", threshold=0.75, lr=1e-5, consistency_weight=0.3, rampup_epochs=30,
               warmup_epochs=10, clip=0.5, accumulate=4),
    "supervised_baseline": dict(prior="data", threshold=0.75, lr=1e-3, consistency_weight=0.3, rampup_epochs=30,
                                warmup_epochs=0, clip=None, accumulate=1),
}
#: The children of `supervised_baseline`: model settings over the variant's, by name.
PEERS: dict[str, dict[str, Any]] = {
    "pn": dict(objective="pn", fixmatch=False),
    "ge_binomial": dict(objective="ge_binomial", fixmatch=False),
    "nnpu": dict(objective="nnpu", fixmatch=False),
    "fixmatch_nnpu": dict(objective="nnpu", fixmatch=True, **{k: VARIANT_SETTINGS["debugged"][k] for k in
                                                               ("threshold", "lr", "consistency_weight", "rampup_epochs")}),
}
DEFAULT_EPOCHS = 20

SPEC = ProjectSpec(
    name="fixmatch_pu", document="004_4f6c1e6198528e09.txt", registered_model="fixmatch-pu",
    claims_file=Path(__file__).with_name("claims.yaml"), selection_metric="val/auc", mode="max", baseline=0.5,
    citations={
        "PSEUDO_LABELS_UNUSED": "with tau=0.95, 0 % of unlabeled samples were used (\"semi-supervised learning is "
                                "severely limited\"); the debugged config lowered the threshold to 0.75 (50 % used); "
                                "target: usage rate > 20 %.",
        "PU_PRIOR_MISMATCH": "the config used pi = 0.3 while the data gave pi = 0.197 (\"biased loss computation\"); "
                             "the debugged config set the prior from the data.",
        "PREDICTIONS_COLLAPSED": "prediction std should be > 0.1 (not collapsed).",
        "GRAD_NORM_OUT_OF_RANGE": "gradient norm should be 0.1-10; the diagnosis measured 1.76 (healthy).",
        "GRAD_EXPLODING": "lr 0.001 was too high (\"unstable training on noisy data\"); the fixes lowered it to "
                          "5e-5 and 1e-5 with clipping at 0.5.",
    })


def _prior(name: str, text: str) -> float | str:
    """A prior: "data" (the share of particles among the unlabeled training patches) or a number in (0, 1)."""
    if text.strip().lower() == "data":
        return "data"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise ParamError(name, text, "'data' or a number in (0, 1), e.g. 0.3")
    return value


@dataclass(frozen=True)
class FixMatchPURunConfig(RunConfig):
    """One run of document 004's experiments. Defaults are the quick runs (each entry point within
    10 minutes on two CPU cores from an empty cache); None means the variant's setting
    (`VARIANT_SETTINGS`); the README gives the document's 50-epoch scale."""

    epochs: int = DEFAULT_EPOCHS
    lr: float | None = None
    experiment_name: str = SPEC.name
    variant: str = "original"
    prior: float | str | None = None      # "data" or a number in (0, 1)
    threshold: float | None = None        # pseudo-label confidence threshold, in [0, 1]
    consistency_weight: float | None = None
    rampup_epochs: int | None = None
    warmup_epochs: int | None = None
    clip: float | None = None             # gradient-norm clipping (None: the variant's)
    accumulate: int | None = None         # batches per optimizer step
    backbone: str = "resnet"              # resnet | cnn
    width: int = 16
    batch_size: int = 64                  # unlabeled patches per step
    positive_batch_size: int = 16         # labeled particles per step
    n_micrographs: int = 24               # simulated: 3 validation, 3 test, the rest training
    particles_per_micrograph: int = 30
    negatives_per_micrograph: int = 90
    labeled_fraction: float = 0.3         # share of the particles whose label is known
    snr: float = 0.05                     # simulated micrographs' signal-to-noise ratio
    box: int = 48                         # patch side in pixels
    micrographs: str | None = None        # your folder of MRC micrographs instead of the simulator
    coordinates: str | None = None        # your particle coordinates (RELION .star or Topaz .txt)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ParamError("variant", self.variant, f"one of {', '.join(VARIANTS)}")
        if (self.micrographs is None) != (self.coordinates is None):
            given, missing = ("micrographs", "coordinates") if self.coordinates is None else ("coordinates", "micrographs")
            raise ParamError(missing, None, f"a value whenever {given} is given (your micrographs need their "
                             "particle coordinates, and the other way round)")

    @property
    def entry_point(self) -> str:
        return ENTRY_POINTS[self.variant]

    @property
    def is_comparison(self) -> bool:
        return self.variant == "supervised_baseline"

    def setting(self, name: str) -> Any:
        """A training setting: the run's own when given, else the variant's."""
        own = getattr(self, name)
        return VARIANT_SETTINGS[self.variant][name] if own is None else own

    def child(self, **changes: object) -> "FixMatchPURunConfig":
        return replace(self, **changes)


_DEFAULTS = FixMatchPURunConfig()

# The entry parameters, in the order of MLproject. mlflow run passes each as text; empty = the variant's.
PARAMS: tuple[Param, ...] = (
    Param("variant", choice(*VARIANTS), _DEFAULTS.variant, "which run of document 004"),
    Param("epochs", integer(minimum=1, maximum=100_000), str(_DEFAULTS.epochs), "training epochs (the document: 50+)"),
    Param("lr", optional(real(minimum=0.0, maximum=10.0, exclusive_minimum=True)), None,
          "Adam learning rate; empty = the variant's (1e-3, 5e-5, 1e-5)"),
    Param("prior", optional(_prior), None, "class prior of the PU risk: 'data' or a number in (0, 1); empty = the variant's"),
    Param("threshold", optional(real(minimum=0.0, maximum=1.0)), None,
          "pseudo-label confidence threshold in [0, 1]; empty = the variant's (0.95, 0.75)"),
    Param("consistency_weight", optional(real(minimum=0.0, maximum=1000.0)), None, "FixMatch loss weight; empty = the variant's"),
    Param("rampup_epochs", optional(integer(minimum=0, maximum=100_000)), None, "consistency ramp-up epochs; empty = the variant's"),
    Param("warmup_epochs", optional(integer(minimum=0, maximum=100_000)), None, "learning-rate warm-up epochs; empty = the variant's"),
    Param("clip", optional(real(minimum=0.0, maximum=1e6, exclusive_minimum=True)), None,
          "gradient-norm clipping; empty = the variant's (none, or 0.5 for v2)"),
    Param("accumulate", optional(integer(minimum=1, maximum=1024)), None, "batches per optimizer step; empty = the variant's"),
    Param("backbone", choice("resnet", "cnn"), _DEFAULTS.backbone, "patch classifier: a small ResNet or a simple CNN"),
    Param("width", integer(minimum=1, maximum=1024), str(_DEFAULTS.width), "channels of the first stage"),
    Param("batch_size", integer(minimum=2, maximum=65_536), str(_DEFAULTS.batch_size), "unlabeled patches per step"),
    Param("positive_batch_size", integer(minimum=1, maximum=65_536), str(_DEFAULTS.positive_batch_size),
          "labeled particles per step"),
    Param("seed", integer(minimum=0, maximum=2**32 - 1), str(_DEFAULTS.seed), "seed of data, split, weights, shuffle"),
    Param("n_micrographs", integer(minimum=7, maximum=100_000), str(_DEFAULTS.n_micrographs),
          "simulated micrographs (3 validation, 3 test, the rest training; at least 7)"),
    Param("particles_per_micrograph", integer(minimum=1, maximum=10_000), str(_DEFAULTS.particles_per_micrograph),
          "simulated particles per micrograph"),
    Param("negatives_per_micrograph", integer(minimum=1, maximum=100_000), str(_DEFAULTS.negatives_per_micrograph),
          "background patches per micrograph"),
    Param("labeled_fraction", real(minimum=0.0, maximum=0.99, exclusive_minimum=True),
          str(_DEFAULTS.labeled_fraction), "share of the particles whose label is known"),
    Param("snr", real(minimum=0.0, maximum=100.0, exclusive_minimum=True), str(_DEFAULTS.snr),
          "simulated micrographs' signal-to-noise ratio (real ones: about 0.01-0.1)"),
    Param("box", integer(minimum=16, maximum=1024), str(_DEFAULTS.box), "patch side in pixels"),
    Param("micrographs", optional_dir("a folder of MRC micrographs (*.mrc)"), None,
          "your micrographs; empty = simulated ones"),
    Param("coordinates", optional_file("a RELION .star or Topaz coordinate file"), None,
          "your particle coordinates for those micrographs"),
    *diagnostics_params(_DEFAULTS.log_every, _DEFAULTS.policy),
)


def check_inputs(config: FixMatchPURunConfig) -> None:
    """Read the user's files and check the sizes, so a bad one is a parameter error, not a failed run.

    Raises:
        ParamError: unreadable micrographs or coordinates, coordinates outside a micrograph, too few
            micrographs to split, or a box that does not fit.
    """
    from projects.fixmatch_pu.data import check_user_data  # loads numpy and the file readers only

    check_user_data(config)

"""Configuration of the document-001 reproduction: the dataclass, and its entry parameters.

Importing this module loads only the standard library (and `projects.common.params`), so
that `train.py` can reject a bad parameter before torch, Lightning or MLflow are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from projects.common.config import RunConfig
from projects.common.params import Param, ParamError, choice, diagnostics_params, integer, optional_file, real
from projects.common.spec import ProjectSpec

__all__ = ["SPEC", "PARAMS", "ReprGradflowConfig", "check_inputs", "load_init_state"]

SPEC = ProjectSpec(name="repr_gradflow", document="001_bac714bd05ae718b.txt", registered_model="repr-gradflow",
                   claims_file=Path(__file__).with_name("claims.yaml"), selection_metric="val/acc", mode="max",
                   baseline="chance/acc",  # the run's chance accuracy, 1/n_classes: 1/60 at the document's scale
                   citations={
                       "GRAD_NEVER_UPDATED": "extract_features() ran the representation stage in eval() under "
                                             "torch.no_grad() and converted to numpy, so its parameters never "
                                             "received a gradient; fixes 1-4 ran it in train() mode with gradients "
                                             "and returned the tensor, fix 6 logged parameter counts.",
                   })


@dataclass(frozen=True)
class ReprGradflowConfig(RunConfig):
    """One run of document 001's experiment. Defaults are the quick run (about a minute on two
    CPU cores) at the document's own data scale: 500 samples of 60 classes."""

    epochs: int = 40
    lr: float = 3e-3                      # Adam, over every parameter in both variants
    experiment_name: str = SPEC.name
    variant: str = "fixed"                # "broken": the document's bug; "fixed": its fixes 1-4
    n_samples: int = 500                  # generated samples; the document had 500 (~8 a class)
    n_classes: int = 60                   # the document's 60 classes; chance is 1/60
    batch_size: int = 32
    data_path: str | None = None          # the user's .npz (X (N, T, C) float, y (N,) int)
    init_checkpoint: str | None = None    # a state dict to start from (loaded weights_only)
    # The generated task and the network (see lightning_modules.repr_gradflow).
    seq_len: int = 128
    n_channels: int = 3
    reservoir_size: int = 64
    conv_channels: int = 32
    kernel_sizes: tuple[int, ...] = field(default=(3, 5, 7))

    def __post_init__(self) -> None:
        if self.variant not in ("broken", "fixed"):
            raise ParamError("variant", self.variant, "one of broken, fixed")
        if self.data_path is None and self.n_samples < 2 * self.n_classes:
            raise ParamError("n_samples", self.n_samples,
                             f"an integer >= 2 * n_classes = {2 * self.n_classes} (two samples a class)")

    @property
    def entry_point(self) -> str:
        """The MLproject entry point, also the `fixlab.variant` tag: `repr_broken` or `repr_fixed`."""
        return f"repr_{self.variant}"


_DEFAULTS = ReprGradflowConfig()

# The entry parameters, in the order of MLproject. mlflow run passes each as text.
PARAMS: tuple[Param, ...] = (
    Param("variant", choice("broken", "fixed"), _DEFAULTS.variant,
          "broken = document 001's bug (representation under eval/no_grad/numpy); fixed = fixes 1-4"),
    Param("n_samples", integer(minimum=4, maximum=1_000_000), str(_DEFAULTS.n_samples),
          "generated samples (the document: 500); ignored with data_path"),
    Param("n_classes", integer(minimum=2, maximum=10_000), str(_DEFAULTS.n_classes),
          "classes (the document: 60)"),
    Param("epochs", integer(minimum=1, maximum=100_000), str(_DEFAULTS.epochs), "training epochs"),
    Param("batch_size", integer(minimum=1, maximum=65_536), str(_DEFAULTS.batch_size), "batch size"),
    Param("lr", real(minimum=0.0, maximum=10.0, exclusive_minimum=True), str(_DEFAULTS.lr),
          "Adam learning rate"),
    Param("seed", integer(minimum=0, maximum=2**32 - 1), str(_DEFAULTS.seed), "seed of everything"),
    Param("data_path", optional_file("a path to an existing .npz file"), None,
          "your data: .npz with X (N, T, C) float and y (N,) int; empty = generated task"),
    Param("init_checkpoint", optional_file("a path to an existing checkpoint file"), None,
          "a state dict (or Lightning checkpoint) to start from; empty = random init"),
    *diagnostics_params(_DEFAULTS.log_every, _DEFAULTS.policy),
)


def load_init_state(path: str) -> dict[str, Any]:
    """The network state dict in `path` (a plain state dict or a Lightning checkpoint).

    Raises:
        ParamError: one line naming `init_checkpoint`, if the file is missing, corrupt, or not
            loadable with `weights_only=True`.
    """
    from mlflow_plugins.registry import load_state_dict_safely

    try:
        state = load_state_dict_safely(path)
    except ValueError as exc:
        raise ParamError("init_checkpoint", path, "a torch state dict or Lightning checkpoint",
                         problem=str(exc)) from None
    if isinstance(state.get("state_dict"), dict):  # a Lightning checkpoint of ReprGradflowModule
        state = {k.removeprefix("net."): v for k, v in state["state_dict"].items()}
    return state


def check_inputs(config: ReprGradflowConfig) -> None:
    """Open the files the config names, so a bad one is a parameter error, not a failed run.

    Raises:
        ParamError: `data_path` is not a valid data set for `n_classes`, or `init_checkpoint`
            cannot be loaded or does not fit the network.
    """
    n_channels = config.n_channels
    if config.data_path:
        from lightning_modules.repr_gradflow.user_data import EXPECTED, DataFileError, load_npz

        try:
            x, _ = load_npz(config.data_path, n_classes=config.n_classes)
        except DataFileError as exc:
            raise ParamError("data_path", config.data_path, EXPECTED, problem=exc.problem) from None
        n_channels = int(x.shape[2])
    if config.init_checkpoint:
        from lightning_modules.repr_gradflow.model import ReprGradflowNet

        state = load_init_state(config.init_checkpoint)
        net = ReprGradflowNet(net_config(config, n_channels))
        problem = _state_mismatch(net.state_dict(), state)
        if problem:
            raise ParamError("init_checkpoint", config.init_checkpoint,
                             "a checkpoint of this network (same n_classes, channels and sizes)",
                             problem=f"does not fit the network: {problem}")


def net_config(config: ReprGradflowConfig, n_channels: int) -> Any:
    """The `ReprNetConfig` of `config` for inputs with `n_channels` channels."""
    from lightning_modules.repr_gradflow.model import ReprNetConfig

    return ReprNetConfig(n_channels=n_channels, n_classes=config.n_classes, variant=config.variant,
                         reservoir_size=config.reservoir_size, reservoir_seed=config.seed,
                         conv_channels=config.conv_channels, kernel_sizes=config.kernel_sizes)


def _state_mismatch(expected: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    """Why `state` cannot load into a model whose state dict is `expected` ('' if it can)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state)
                    if tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape))
    parts = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
        if keys:
            parts.append(f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}")
    return ", ".join(parts)

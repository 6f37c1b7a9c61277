"""A project run's console: fixlab's warnings as one line, no Lightning banners or known third-party
noise, one narrow progress bar with the loss and the selection metric, and a pyfunc model that logs
and loads without MLflow's type-hint warning."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Iterator

import lightning as L
import mlflow
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from projects.common.console import fixlab_line
from projects.common.lightning_fit import BAR_WIDTH, OneLineProgressBar, bar_metrics

ROOT = Path(__file__).resolve().parents[1]

# A subprocess: optionally quiet the console, then what a project run prints along the way.
SCRIPT = """
import sys, warnings
if sys.argv[1] == "quiet":
    from projects.common.console import quiet_console
    quiet_console()
import lightning as L
from lightning.pytorch.utilities._pytree import _tree_flatten
L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False)  # GPU/TPU lines
_tree_flatten(1)  # torch's LeafSpec FutureWarning, from Lightning's code
warnings.warn("fixlab: GRAD_NEVER_UPDATED at net.w (step 0): no gradient\\nfor 5 steps", RuntimeWarning)
warnings.warn("someone else's warning", UserWarning)
"""


def console_of(mode: str, tmp_path: Path) -> list[str]:
    """The stdout+stderr lines of `SCRIPT` run with `mode` ("quiet" or "plain")."""
    script = tmp_path / "run_like_a_project.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": ""}
    out = subprocess.run([sys.executable, str(script), mode], env=env, capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]


@pytest.mark.slow
def test_quiet_console_prints_fixlab_warnings_as_one_line_and_drops_banners(tmp_path):
    plain, quiet = console_of("plain", tmp_path), console_of("quiet", tmp_path)
    # Without it (the check can fail): Python's format, the banners and the deprecation are there.
    assert any("RuntimeWarning: fixlab: GRAD_NEVER_UPDATED" in line for line in plain), plain
    assert any(line.startswith("GPU available:") for line in plain), plain
    assert any("LeafSpec" in line for line in plain), plain

    fixlab = [line for line in quiet if "fixlab" in line]
    assert fixlab == ["fixlab: GRAD_NEVER_UPDATED at net.w (step 0): no gradient for 5 steps"], quiet
    assert not [line for line in quiet if "available:" in line or "LeafSpec" in line or "Tip:" in line], quiet
    # Anyone else's warning keeps Python's format: path:line: category: message, then the source line.
    other = [i for i, line in enumerate(quiet) if "UserWarning: someone else's warning" in line]
    assert other and quiet[other[0]].startswith(str(tmp_path / "run_like_a_project.py:")), quiet
    assert quiet[other[0] + 1].strip().startswith("warnings.warn(\"someone else's warning\""), quiet


def test_fixlab_line_is_only_for_fixlab_runtime_warnings():
    assert fixlab_line("fixlab: A\n  B ", RuntimeWarning) == "fixlab: A B"
    assert fixlab_line("fixlab: a recording note", type("RecordingWarning", (RuntimeWarning,), {})) == \
        "fixlab: a recording note"
    assert fixlab_line("fixlab: not a runtime warning", UserWarning) is None
    assert fixlab_line("torch: something", RuntimeWarning) is None


@pytest.mark.slow
def test_importing_the_plugin_leaves_the_console_alone():
    code = ("import logging, warnings, mlflow_plugins, mlflow_plugins.lightning; "
            "print(warnings.showwarning.__module__, "
            "logging.getLogger('lightning.pytorch.utilities.rank_zero').level)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["warnings", "0"]


class Tiny(L.LightningModule):
    """Logs what the project's module logs to the bar: loss (step and epoch) and accuracy, train and val."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", (logits.argmax(-1) == y).float().mean(), on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_progress_bar_shows_loss_and_selection_metric_on_one_narrow_line(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(24, 4, generator=g), torch.randint(0, 3, (24,), generator=g))
    loader = DataLoader(data, batch_size=8)
    bar = OneLineProgressBar("val/acc")
    trainer = L.Trainer(max_epochs=2, callbacks=[bar], logger=CSVLogger(tmp_path), enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, default_root_dir=tmp_path)
    module = Tiny()
    trainer.fit(module, loader, loader)
    assert "v_num" in TQDMProgressBar().get_metrics(trainer, module)  # what Lightning would show
    assert set(bar.get_metrics(trainer, module)) == {"loss", "val/acc"}
    trainer.test(module, loader, verbose=False)
    printed = capsys.readouterr().out
    frames = [frame for line in printed.split("\n") for frame in line.split("\r") if frame.strip()]
    assert frames, printed
    assert max(len(frame) for frame in frames) <= BAR_WIDTH, max(frames, key=len)
    assert not [f for f in frames if f.startswith(("Validation", "Sanity"))], frames  # one bar per phase
    assert any("loss=" in f and "val/acc=" in f for f in frames), frames
    assert not [f for f in frames if "v_num" in f or "train/acc" in f or "val/loss" in f], frames


def test_bar_metrics_keep_only_the_loss_and_the_selection_metric():
    metrics = {"v_num": "a1b2", "train/loss_step": 1.5, "train/loss_epoch": 1.7, "train/acc": 0.2,
               "val/loss": 1.6, "val/acc": 0.3}
    assert bar_metrics(metrics, "val/acc") == {"loss": 1.5, "val/acc": 0.3}
    assert bar_metrics({"train/loss_epoch": 1.7}, "val/acc") == {"loss": 1.7}
    assert bar_metrics({"v_num": 3}, "val/auc") == {}


@pytest.fixture
def mlflow_lines() -> Iterator[list[logging.LogRecord]]:
    """Every record MLflow's loggers emit during the test (MLflow's logger does not propagate to
    the root, so caplog alone would miss them)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Keep(level=logging.DEBUG), logging.getLogger("mlflow")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def type_hint_noise(caught: list[warnings.WarningMessage], records: list[logging.LogRecord]) -> list[str]:
    texts = [str(w.message) for w in caught] + [r.getMessage() for r in records]
    return [t for t in texts if "type hint" in t.lower()]


def test_capture_sees_mlflows_type_hint_warning(mlflow_lines):
    """The check below can fail: an unhinted PythonModel's warning is caught by the same capture."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Unhinted(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input

    assert type_hint_noise(caught, mlflow_lines), [str(w.message) for w in caught]


def test_fixlab_pyfunc_logs_loads_and_predicts_without_type_hint_warning(tracking_uri, tmp_path, mlflow_lines):
    from jax_modules.cpc_snn_gw import ModelConfig, build_model
    from mlflow_plugins.registry import load_pyfunc
    from mlflow_plugins.registry.pyfunc_models import log_data_model
    from projects.cpc_snn_gw import serving

    config = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
    example = np.random.default_rng(0).standard_normal((2, 2, 256)).astype(np.float32)
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, 256))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    data = serving.save(build_model(config, seed=0), tmp_path / "detector")
    with mlflow.start_run() as run:
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_id = log_data_model(serving.__name__, data, run_id=run.info.run_id, signature=signature,
                                  input_example=example, pip_requirements=["numpy"], tracking_uri=tracking_uri)
        model = load_pyfunc(f"models:/{model_id}")
        probabilities = model.predict(example)
    assert probabilities.shape == (2,) and np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities, serving.load(data).predict(example), rtol=1e-6)
    assert not type_hint_noise(caught, mlflow_lines)
    assert not [r.getMessage() for r in mlflow_lines if "Validating input example" in r.getMessage()]
    assert logging.getLogger("mlflow.pyfunc").level == logging.NOTSET  # put back as it was

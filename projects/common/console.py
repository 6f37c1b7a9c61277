"""A quiet console for fixlab's project runs: what the run measured, its findings and one progress
bar per long phase, without third-party banners.

`quiet_console()` is called once by the project entry (`projects.common.entry.run_entry`) before the
heavy code loads. It changes this process only, and only for a project run: importing
`mlflow_plugins` changes nothing. What it does:

- Lightning's informational lines (``GPU available: ...``, ``TPU available: ...``, ``HPU available``,
  ``LOCAL_RANK: ...``, the litlogger/litmodels tips, ``Trainer.fit stopped``, checkpoint restoring)
  are raised to WARNING on the loggers Lightning documents for them; its warnings still show.
- Third-party warnings fixlab cannot fix are filtered by exact message and category (`NOISE`).
- fixlab's own RuntimeWarnings (message starting with ``fixlab``) print as one line ``fixlab: ...``
  on stderr, without the file path and source line Python adds; other warnings keep their format.

Standard library only: it may run before torch, JAX or MLflow are imported.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any, TextIO

__all__ = ["LIGHTNING_INFO_LOGGERS", "NOISE", "FIXLAB_PREFIX", "quiet_console", "fixlab_line"]

#: Loggers of Lightning's `rank_zero_info` lines (GPU/TPU/HPU available, the tips, "fit stopped",
#: "Restoring states ...") and of the CUDA accelerator's ``LOCAL_RANK: ... CUDA_VISIBLE_DEVICES`` line.
LIGHTNING_INFO_LOGGERS: tuple[str, ...] = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
)

#: (message regex, category, module regex) of third-party warnings a project run cannot act on.
NOISE: tuple[tuple[str, type[Warning], str], ...] = (
    # torch 2.13 deprecates `LeafSpec`; Lightning 2.6's `utilities/_pytree.py` still builds one.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning,
     r"lightning\.pytorch\.utilities\._pytree"),
    # The run's checkpoint folder holds its config.json (for `fixlab resume`) before the first
    # checkpoint: by design, not a stale folder.
    (r"Checkpoint directory .* exists and is not empty", UserWarning,
     r"lightning\.pytorch\.callbacks\.model_checkpoint"),
)

FIXLAB_PREFIX = "fixlab"

_WRAPPED = "_fixlab_one_line"  # marks our wrapper of warnings.showwarning (so wrapping happens once)


def fixlab_line(message: Warning | str, category: type[Warning]) -> str | None:
    """The one line a fixlab RuntimeWarning prints as (``fixlab: ...``); None for any other warning."""
    text = str(message)
    if not (issubclass(category, RuntimeWarning) and text.startswith(FIXLAB_PREFIX)):
        return None
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def quiet_console() -> None:
    """Quiet this process's console for a project run (see the module's docstring); idempotent."""
    for name in LIGHTNING_INFO_LOGGERS:  # its own level: Lightning sets its parents to INFO when imported
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for message, category, module in NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    if not getattr(warnings.showwarning, _WRAPPED, False):
        warnings.showwarning = _one_line_for_fixlab(warnings.showwarning)


def _one_line_for_fixlab(show: Any) -> Any:
    """`warnings.showwarning` that writes fixlab's RuntimeWarnings as one line and passes every
    other warning to `show` (Python's format, or whoever replaced it before)."""

    def showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: TextIO | None = None, line: str | None = None) -> None:
        one = fixlab_line(message, category)
        if one is None:
            show(message, category, filename, lineno, file, line)
            return
        stream = file if file is not None else sys.stderr
        if stream is None:  # pythonw: no console
            return
        try:
            _write_line(one, stream)
        except OSError:  # a closed console: like Python's own showwarning, say nothing
            pass

    setattr(showwarning, _WRAPPED, True)
    return showwarning


def _write_line(text: str, stream: TextIO) -> None:
    """`text` on its own line of `stream`: through tqdm when it is loaded, which clears the open
    progress bars, writes and draws them again (a bare write would land inside a bar's line)."""
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    if tqdm is not None:
        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")

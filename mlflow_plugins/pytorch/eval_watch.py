"""Eval/train mix-ups for torch: one `EvalCheck` per evaluation, from the model itself.

`begin(step)` when an evaluation starts, `end(step)` when it ends; in between, the first forward
of the evaluation is checked once (`check`). Nothing else runs per evaluation batch.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import nn

from ..analysis.eval_mode import EvalCheck
from ..session import StepReport
from .mode_modules import all_modules, mode_dependent, running_stat, sigma_ratio, spectral_norms, stochastic
from .replay import (clone_inputs, forked_rng, forward_may_repeat, max_difference, output_tensors,
                     restore_attributes, saved_attributes, seed_forked, to_host)

Guard = Callable[[Callable[[], Any], Any], Any]
# A spectral norm whose estimate u^T W v is below this fraction of the weight's true spectral norm
# has not run its power iteration: fresh vectors give <= 0.35 of it, 15 iterations >= 0.9.
SIGMA_RATIO_MIN = 0.5
_SEEDS = (0x5EED, 0x5EED + 1)  # the two passes draw different random numbers, inside fork_rng


class EvalWatch:
    """Collects an `EvalCheck` per evaluation of `model`.

    What it measures, and what it costs:
      - modes: which mode-dependent modules (dropout with p > 0, RReLU, RNN and attention
        dropout, modules with running statistics such as batch norm, spectral normalization)
        are in training mode: a Python pass over a list made once. Modules kept in plain Python
        lists, tuples or dicts (not `nn.ModuleList`), which `.eval()` never reaches, are included.
      - determinism: the first evaluation forward is repeated twice on its own inputs (cloned),
        under `torch.no_grad()` and `torch.random.fork_rng` with two different seeds (the user's
        RNG streams are untouched); max |a - b| is reduced on the device and copied once. Both
        passes start from the same state, and leave none behind: the modules' buffers (copied
        once per check: batch norm in training mode, a stateful RNN's cache) and plain Python
        attributes (a hidden state rebound each forward, a list the forward appends to) are
        restored after each pass. Hooks of the user's on the model see the two passes.
      - running statistics: floating-point buffers named `running_*` (batch norm and the like)
        are copied when the evaluation begins and compared once when it ends (one fused
        subtraction and norm, one host copy).
      - lazy initialisation: a spectral normalization (`torch.nn.utils.spectral_norm` or
        `torch.nn.utils.parametrizations.spectral_norm`) that has run no training-mode forward
        since the watch began, and whose stored power-iteration vectors give an estimate below
        half the weight's spectral norm (one `matrix_norm(ord=2)` per such layer, only then).
        A one-shot forward pre-hook per spectral-norm layer notes its first training forward.

    Args:
        model: the evaluated module.
        guard: runs a check inside the model's forward so that a failure never reaches training
            (`Session.guard`); default: run it as is.
    """

    def __init__(self, model: nn.Module, *, guard: Guard | None = None) -> None:
        self.model = model
        self.where = type(model).__name__
        self.guard: Guard = guard or (lambda fn, default=None: fn())
        modules = all_modules(model)
        self._all = [m for _, m in modules]
        self._modes = [(path, m, stochastic(m)) for path, m in modules if mode_dependent(m)]
        self._stats = [(f"{path}.{name}", m, name) for path, m in modules
                       for name, b in m.named_buffers(recurse=False) if running_stat(name, b)]
        self._spectral = [(path, m) for path, m in modules if spectral_norms(m)]
        self._untrained: dict[str, Any] = {
            path: m.register_forward_pre_hook(lambda mod, args, p=path: self._saw_forward(p, mod))
            for path, m in self._spectral}
        self.active = False
        self._step = 0
        self._before: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self._handles: list[Any] = []
        self._calls: dict[str, tuple[nn.Module, tuple, dict]] = {}
        self._checked = False
        self._modes_seen: set[str] = set()
        self._stochastic_seen: set[str] = set()
        self._diff: tuple[float, float] | None = None
        self._uninitialised: tuple[str, ...] = ()

    # the evaluation ----------------------------------------------------------------------

    @property
    def checked(self) -> bool:
        """Whether this evaluation's first forward has been checked."""
        return self._checked

    def begin(self, step: int) -> None:
        """An evaluation starts: copies the running statistics, arms the first-forward capture."""
        self._disarm()
        self.active, self._step, self._checked = True, int(step), False
        self._modes_seen, self._stochastic_seen = set(), set()
        self._diff, self._uninitialised, self._calls = None, (), {}
        with torch.no_grad():
            self._before = [(path, t, t.detach().clone()) for path, t in self._stat_tensors()]
        self._handles = [self.model.register_forward_pre_hook(self._capture_root, with_kwargs=True),
                         self.model.register_forward_hook(self._check_root, with_kwargs=True)]
        for name, child in self.model.named_children():
            if forward_may_repeat(child):
                self._handles.append(child.register_forward_pre_hook(
                    lambda mod, args, kwargs, n=name: self._capture(n, mod, args, kwargs), with_kwargs=True))

    def check(self, context: Callable[[], Any] = contextlib.nullcontext) -> None:
        """Checks the first evaluation forward (once per evaluation): modes, uninitialised layers,
        and two repeated passes over its inputs. Runs by itself after the model's own forward;
        call it after the first batch for a model that is evaluated through its children (a
        LightningModule whose `validation_step` calls `self.model(x)`), with `context` the
        autocast the forward ran under."""
        if not self.active or self._checked:
            return
        self._checked = True
        calls = self._targets()
        self._disarm()
        self.note_modes()
        self._uninitialised = self._uninitialised_layers()
        if calls:
            with context():
                self._diff = self._repeat(calls)

    def note_modes(self) -> None:
        """Notes the mode-dependent modules in training mode now (a Python pass over a short list)."""
        for path, m, random in self._modes:
            if m.training:
                self._modes_seen.add(path)
                if random:
                    self._stochastic_seen.add(path)

    def end(self, step: int) -> StepReport:
        """The evaluation ended: its `EvalCheck` (empty report when none began)."""
        if not self.active:
            return StepReport()
        try:
            if not self._checked and self._calls:
                self.check()
            changed = self._changed()
        finally:
            self._disarm()
            self.active = False
            self._calls, self._before = {}, []
        order = [path for path, _, _ in self._modes]
        max_abs, rel = self._diff if self._diff is not None else (None, None)
        check = EvalCheck(self._step, self.where,
                          train_mode=tuple(p for p in order if p in self._modes_seen),
                          stochastic=tuple(p for p in order if p in self._stochastic_seen),
                          max_abs_diff=max_abs, rel_diff=rel, changed=changed,
                          uninitialised=self._uninitialised)
        return StepReport([check])

    def close(self) -> None:
        """Removes every hook (the capture ones and the spectral-norm ones)."""
        self._disarm()
        self.active = False
        for handle in self._untrained.values():
            if handle is not None:
                handle.remove()
        self._untrained = {p: None for p in self._untrained}

    # hooks --------------------------------------------------------------------------------

    def _saw_forward(self, path: str, module: nn.Module) -> None:
        """A spectral-norm layer's first training-mode forward runs its power iteration."""
        handle = self._untrained.get(path)
        if module.training and handle is not None:
            handle.remove()
            self._untrained[path] = None

    def _capture_root(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._capture("", module, args, kwargs)

    def _capture(self, name: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if name not in self._calls:
            self._calls[name] = (module, args, kwargs)

    def _check_root(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.guard(self.check, None)

    def _disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # measurements -------------------------------------------------------------------------

    def _targets(self) -> list[tuple[nn.Module, tuple, dict]]:
        """The model's first evaluation call, else the first call of each child that ran."""
        if "" in self._calls:
            return [self._calls[""]]
        return list(self._calls.values())

    def _repeat(self, calls: list[tuple[nn.Module, tuple, dict]]) -> tuple[float, float] | None:
        """Two passes over the captured inputs; max |a - b| and that relative to max |a|."""
        outputs = []
        with forked_rng(self.model), torch.no_grad():
            buffers = [(b, b.detach().clone()) for m in self._all for b in m.buffers(recurse=False)]
            attributes = saved_attributes(self._all)
            for seed in _SEEDS:
                seed_forked(seed, self.model)
                try:
                    outputs.append([m(*clone_inputs(args), **clone_inputs(kwargs)) for m, args, kwargs in calls])
                finally:  # leave no trace, and start the second pass where the first did
                    for b, copy in buffers:
                        b.copy_(copy)
                    restore_attributes(attributes)
            return max_difference(output_tensors(outputs[0]), output_tensors(outputs[1]))

    def _uninitialised_layers(self) -> tuple[str, ...]:
        """Spectral-norm layers with no training forward yet whose estimate is far off."""
        pending = [(path, m) for path, m in self._spectral if self._untrained.get(path) is not None]
        if not pending:
            return ()
        with torch.no_grad():
            ratios = [(path, sigma_ratio(m)) for path, m in pending]
            values = to_host([r for _, r in ratios])
        return tuple(path for (path, _), r in zip(ratios, values) if r < SIGMA_RATIO_MIN)

    def _stat_tensors(self) -> list[tuple[str, torch.Tensor]]:
        found = [(path, getattr(m, name, None)) for path, m, name in self._stats]
        return [(p, t) for p, t in found if isinstance(t, torch.Tensor) and t.is_floating_point()]

    def _changed(self) -> tuple[str, ...]:
        """The running statistics that differ from their copy at `begin`: one fused reduction."""
        now = dict(self._stat_tensors())
        pairs = [(p, now[p], before) for p, _, before in self._before
                 if p in now and now[p].shape == before.shape and now[p].device == before.device]
        if not pairs:
            return ()
        with torch.no_grad():
            diffs = torch._foreach_sub([a.detach() for _, a, _ in pairs], [b for _, _, b in pairs])
            norms = to_host(list(torch._foreach_norm(diffs)))
        return tuple(p for (p, _, _), n in zip(pairs, norms) if n > 0)

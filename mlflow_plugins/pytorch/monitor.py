"""`watch(model, optimizer)`: every diagnostic for a plain PyTorch loop, through hooks."""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch

from ..analysis import Rule, builtin_rules
from ..analysis.rule import check_rules
from ..findings import Finding
from ..frameworks import kind_of
from ..run_check import resolve_recorder
from ..run_record import RunReport
from ..session import Session, StepReport, TrainingStopped
from ..thresholds import Thresholds, check_log_every, check_policy
from .amp_watch import AmpWatch
from .autocast_watch import AutocastWatch
from .census import CENSUS_TITLE, CensusWatch
from .eval_watch import EvalWatch
from .locate import AutocastState
from .nonfinite_watch import NonfiniteWatch
from .norm_watch import NormWatch
from .optimizer_watch import OptimizerWatch
from .params import named_optimizer_params
from .replica_watch import ReplicaWatch

# Monitors not closed yet: a model carries one monitor's hooks at a time.
_OPEN: "weakref.WeakSet[Monitor]" = weakref.WeakSet()


class Monitor:
    """Watches a plain PyTorch training loop and records findings in MLflow.

    Hooks: a forward pre-hook and hook on `model` (a training forward opens a step, its output
    gets the one-reduction non-finite check), a pre- and post-hook on `optimizer.step` (gradient
    health, normalization probes, the policy; the update's size), and a hook on one parameter
    counting backward passes. Nothing else runs per step; see `GradientWatch`, `UpdateWatch`,
    `ResetWatch` and `AutocastWatch` for what sampled steps add. Under torch.distributed (DDP),
    create it on every rank after `init_process_group`: log steps compare the replicas
    (`ReplicaWatch`, one all-reduce), and only rank zero records in MLflow; every rank keeps its
    `findings`.

    Args:
        model: the module being trained.
        optimizer: its optimizer; the watched parameters are those it holds.
        log_every: optimizer steps between full statistics and metric flushes.
        policy: on a critical finding, "warn" (default), "skip_step" (drop the step's gradients
            when they are non-finite or exploding) or "stop" (raise `TrainingStopped`).
        every_step: judge gradient norms and normalization probes on every step (slower; for
            debugging). Mean |grad|, per-parameter and per-module metrics stay per interval.
        scaler: the `torch.amp.GradScaler` of the loop, to follow skipped steps.
        norm_modules: module paths or class names to probe besides the built-in normalizations.
        rules: the user's own rules (`Rule.metric(...)` or `Rule` subclasses), judged beside
            the built-in ones and recorded the same way; feed metric rules with `log_metrics`.
        run_id / tracking_uri: the MLflow run; default the active run, then `MLFLOW_RUN_ID`;
            without one the monitor still collects `findings`. A named run (`run_id`, or
            `MLFLOW_RUN_ID`) is looked up once, here: one that does not exist is an error.
        **thresholds: rule thresholds, see `Thresholds`.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed: among them a `run_id`
            the tracking store does not hold, a `model` another open monitor watches (close
            that one first), or a JAX/Flax object (use `mlflow_plugins.jax.watch_jax`).

    Evaluation: wrap each evaluation pass in `with monitor.evaluation():` and it is checked
    once for eval/train mix-ups (see `evaluation`); forwards inside it are never taken for
    training steps.

    An exception that leaves the `with` block is recorded as the run's outcome (`fixlab.outcome`
    = `failed: ...` or `killed: ...`), and the run's health is then not `ok`.

    Example:
        >>> with mlflow_plugins.watch(model, optimizer) as monitor:
        ...     for x, y in loader:
        ...         optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
        >>> [f.code for f in monitor.findings]
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                 log_every: int = 50, policy: str = "warn", every_step: bool = False,
                 scaler: Any = None, norm_modules: Iterable[str] = (), rules: Iterable[Rule] = (),
                 run_id: str | None = None, tracking_uri: str | None = None,
                 **thresholds: float) -> None:
        _check_model(model)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer={type(optimizer).__name__} is not a torch.optim.Optimizer")
        if scaler is not None and not hasattr(scaler, "get_scale"):
            raise ValueError(f"scaler={type(scaler).__name__} is not a torch.amp.GradScaler")
        if isinstance(norm_modules, str):
            raise ValueError(f"norm_modules={norm_modules!r} is not allowed; allowed: a list of module "
                             f"paths or class names, e.g. [{norm_modules!r}]")
        self.t = Thresholds.from_kwargs(thresholds)
        self.policy = check_policy(policy)
        log_every = check_log_every(log_every)
        recorder = resolve_recorder(run_id, tracking_uri)  # a named run must exist: before any hook
        self.model = model
        named = named_optimizer_params(model, optimizer)
        self.watch = OptimizerWatch.of(model, optimizer, named, self.t, log_every=log_every,
                                       every_step=bool(every_step),
                                       verdict_every_step=self.policy != "warn")
        self.autocast = AutocastWatch(model)
        self.census = CensusWatch(model, [p for _, p in named])
        self.nonfinite = NonfiniteWatch(model)
        self.replicas = ReplicaWatch(named, model=model)  # collective under DDP: on every rank
        self.amp = AmpWatch(scaler) if scaler is not None else None
        self.norms = NormWatch(model, log_every=log_every, every_step=bool(every_step),
                               norm_modules=tuple(norm_modules))
        report = RunReport.open(recorder)
        self.session = Session([*builtin_rules(self.t), *check_rules(rules)], policy=self.policy,
                               report=report, owner="watch()")
        report.use_grad_flow(self.watch.grads.flow)
        report.use_thresholds(self.t)
        self.step = 0
        self._inputs: tuple[tuple, dict] | None = None
        self._output: Any = None
        self._autocast: AutocastState | None = None
        self._device_type = next((p.device.type for p in model.parameters()), "cpu")
        self.evals = EvalWatch(model, guard=lambda fn, default=None: self._guard(fn, default))
        self._handles = [
            model.register_forward_pre_hook(self._on_forward_pre, with_kwargs=True),
            model.register_forward_hook(self._on_forward, with_kwargs=True),
            optimizer.register_step_pre_hook(self._on_step_pre),
            optimizer.register_step_post_hook(self._on_step_post),
        ]
        _OPEN.add(self)

    @property
    def findings(self) -> list[Finding]:
        return list(self.session.findings)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None,
                    epoch: int | None = None) -> None:
        """Logs the model's own metrics to the run (batched) and judges them by the metric rules.

        Args:
            metrics: name to value, e.g. {"train/pseudo_label_rate": 0.12}.
            step: default the optimizer steps taken so far.
            epoch: the epoch, which rules with `for_epochs` need.

        Raises:
            ValueError: a metric rule counts epochs and `epoch` was not given.
            TrainingStopped: policy "stop" met a critical finding.
        """
        self._stop_if(self.session.log_metrics(metrics, step=self.step if step is None else int(step),
                                               epoch=epoch))

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Marks an evaluation (a validation or test pass) of the model, checked once for
        eval/train mix-ups: mode-dependent modules (dropout, batch norm, spectral norm) still in
        training mode (EVAL_IN_TRAIN_MODE), outputs of the first batch that differ between two
        repeated passes (EVAL_NOT_DETERMINISTIC), running statistics the evaluation changed
        (EVAL_UPDATES_STATISTICS), spectral normalization evaluated before its first training
        forward (EVAL_BEFORE_INIT). Only the first forward inside the block is checked (two
        extra passes without gradients, RNG and buffers restored); running statistics are
        compared once when the block ends. Forwards inside it never count as training steps.
        Nested blocks belong to the outermost.

        Raises:
            TrainingStopped: policy "stop" met a critical finding (a rule of the user's).

        Example:
            >>> model.eval()
            >>> with monitor.evaluation(), torch.no_grad():
            ...     accuracy = sum((model(x).argmax(1) == y).sum() for x, y in val_loader)
            >>> model.train()
        """
        if self.evals.active or self.session.closed:
            yield
            return
        self._guard(lambda: self.evals.begin(self.step))
        try:
            yield
        finally:
            self._record([self._guard(lambda: self.evals.end(self.step), StepReport())])

    def state_dict(self) -> dict[str, Any]:
        """The step count, the rules' states and the findings, as plain values (checkpoint it
        beside the model to resume diagnostics where they were)."""
        return {"step": self.step, "session": self.session.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continues from `state_dict()`."""
        self.step = int(state["step"])
        self.session.load_state_dict(state["session"])

    def close(self) -> None:
        """Remove the hooks and write findings, tags, report and the last metrics. Idempotent."""
        if self.session.closed:
            return
        _OPEN.discard(self)
        for h in self._handles:
            h.remove()
        self.norms.disarm()
        self.watch.close()
        self.autocast.disarm()
        self.evals.close()
        self._guard(lambda: self._settle_forward())
        self._guard(lambda: self.session.report.add_section(CENSUS_TITLE, self.census.finish().html()))
        self.session.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.session.ended_by(exc)
        self.close()

    # hooks ---------------------------------------------------------------------------------

    def _training(self, module: torch.nn.Module) -> bool:
        return module.training and torch.is_grad_enabled() and not self.evals.active

    def _on_forward_pre(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """Opens a training step: settles what the previous forward left (a skipped step)."""
        if not self._training(module):
            return
        self._guard(self._settle_forward)
        if self.watch.steps.since:
            self._record([self._guard(lambda: self.watch.steps.check(self.step), StepReport())])
        self._inputs, self._autocast = (args, kwargs), AutocastState.current(self._device_type)
        self.norms.arm(self.step)
        if self.watch.grads.log_step(self.step):
            self._guard(lambda: self.autocast.arm(self.step, self._device_type))

    def _on_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self._training(module):
            self._output = output
            self._guard(lambda: self.nonfinite.observe_output(output))
            if self.autocast.armed:
                self._record([self._guard(self.autocast.collect, StepReport())])

    def _on_step_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        reports = [self._settle_output(),
                   self._guard(lambda: self.watch.resets.collect(self.step), StepReport())]
        grads = self._guard(lambda: self.watch.grads.before_step(self.step), StepReport())
        reports += [grads, self._guard(lambda: self.norms.collect(self.step), StepReport())]
        if self.amp is not None:
            reports.append(self._guard(lambda: self.amp.observe(self.step), StepReport()))
        self._record(reports)
        if self.policy == "skip_step" and grads.bad:
            self.watch.grads.drop_grads()
        self.watch.before_update(self.step, self._guard)

    def _on_step_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self._record([self.watch.after_step(self.step, self._guard)])
        if self.watch.grads.log_step(self.step):  # every rank: optimizer steps are equal under DDP
            self._record([self._guard(lambda: self.replicas.check(self.step), StepReport())])
            self.session.flush()
        self.step += 1

    # steps ---------------------------------------------------------------------------------

    def _settle_forward(self) -> None:
        """A forward whose step never reached the optimizer (a GradScaler skip) is settled here."""
        if self.nonfinite.has_pending:
            amp = self.amp.observe(self.step) if self.amp is not None else StepReport()
            self._record([self._settle_output(), amp])
            if amp.bad:
                self.step += 1  # the scaler skipped this step: it still counts
                self.watch.steps.stepped()

    def _settle_output(self) -> StepReport:
        args, kwargs = self._inputs or ((), {})
        rerun = (lambda: self.model(*args, **kwargs)) if self._inputs is not None else None
        events = self._guard(lambda: self.nonfinite.settle(
            self.step, "output", rerun, self._autocast, self._output), [])
        self._output = None
        return StepReport(events)

    def _record(self, reports: list[StepReport]) -> None:
        if any(r.summaries or r.metrics for r in reports):
            self._stop_if(self.session.record(self.step, reports))

    def _stop_if(self, stop: Finding | None) -> None:
        if stop is not None:
            error = TrainingStopped(stop)
            self.session.ended_by(error)  # the report is written by close(), before the raise
            self.close()
            raise error

    def _guard(self, fn: Callable[[], Any], default: Any = None) -> Any:
        """Diagnostics never crash training: a failure becomes a warning and a finding."""
        return self.session.guard(fn, default)


def _check_model(model: object) -> None:
    """`model` is a torch module that no open monitor watches.

    Raises:
        ValueError: it is not a torch module (a JAX/Flax object is named as such), or it is
            watched already: two monitors would hook each forward and optimizer step twice.
    """
    name = type(model).__name__
    if not isinstance(model, torch.nn.Module):
        kind = kind_of(model)
        if kind in ("a Flax NNX module", "a JAX pytree"):
            raise ValueError(f"model={name} is {kind}; allowed: a torch.nn.Module; for JAX use "
                             "mlflow_plugins.jax.watch_jax(params) with a monitored(...) optimizer")
        raise ValueError(f"model={name} is not a torch.nn.Module; allowed: a torch.nn.Module")
    if any(m.model is model for m in _OPEN):
        raise ValueError(f"model={name} is already watched by an open monitor; allowed: one open "
                         "watch() per model: close the first (monitor.close(), or end its `with` "
                         "block), or watch each optimizer's own sub-module")


def watch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, log_every: int = 50,
          policy: str = "warn", **kwargs: Any) -> Monitor:
    """Watch a plain PyTorch loop; see `Monitor` for every argument."""
    return Monitor(model, optimizer, log_every=log_every, policy=policy, **kwargs)

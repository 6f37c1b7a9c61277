"""`watch_jax(params)`: every diagnostic for a JAX/optax loop, read from `monitored`'s state."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..analysis.rule import check_rules
from ..analysis import (GradFlow, GradPresence, NonfiniteEvent, Rule, builtin_rules, grad_metrics,
                        probe_metrics)
from ..findings import Finding
from ..frameworks import kind_of
from ..run_check import resolve_recorder
from ..run_record import RunReport
from ..session import Session, StepReport, TrainingStopped
from ..thresholds import Thresholds, check_log_every, check_policy
from .eval_watch import EvalWatch
from .locate import locate_nonfinite
from .readout import ParamTable, find_state, grad_snapshot, norm_probes, probe_cvs, update_snapshot
from .transform import INF, NAN, ZERO, MonitoredState

Locate = Callable[[], tuple[Any, Any]]
_MAX_RERUNS = 2  # eager re-runs to locate a non-finite value, before counting without looking


# The measured update's fields of `MonitoredState`, read with the statistics once per log interval.
_UPDATE_FIELDS = ("measured_at", "update_l2", "weight_l2", "update_grad_l2", "still_since")


@dataclass
class _Pending:
    """A step whose status vector is read when the next step is observed."""

    step: int
    status: jax.Array
    locate: Locate | None


class JaxMonitor:
    """Watches a JAX training loop whose optimizer is wrapped in `monitored`, and records findings.

    Per step, `observe` costs one small device copy and, one step late (so that async dispatch
    is never stalled), one host read of an int8 vector: the non-finite check (NONFINITE, with a
    re-run of the failing batch to name the module) and the all-zero check (GRAD_NEVER_UPDATED)
    of every parameter. Every `log_every` steps (the optimizer's, read from its state) it reads
    the whole statistics pytree and the normalization probes' intermediates in one
    `jax.device_get`: gradient health, gradient flow, normalization effect, and the metrics.

    Works with a hand-split loop (`params, opt_state = ...`) and with Flax's own
    `nnx.Optimizer(model, monitored(tx), wrt=nnx.Param)`: pass `optimizer.opt_state`.

    Args:
        params: the parameter pytree the optimizer updates (e.g. `nnx.state(model, nnx.Param)`
            after `probe_norms`), for parameter names, sizes and dtypes.
        log_every: None (default) reads it from the optimizer's `monitored(log_every=...)`; a
            value must equal it.
        policy: on a critical finding, "warn", "skip_step" (needs `monitored(inner,
            skip_step=True)`, which zeroes non-finite updates inside `jit`) or "stop" (raise
            `TrainingStopped` from `observe`). None (default) reads it from the optimizer:
            "skip_step" if it was built with `skip_step=True`, else "warn".
        every_step: judge gradient norms on every step (one sync per step; for debugging).
            Mean |grad| and the probes stay per interval (`monitored(log_every=1)` to have them
            every step), and so do per-parameter and per-module metrics.
        rules: the user's own rules, judged beside the built-in ones; feed metric rules with
            `log_metrics`.
        run_id / tracking_uri: the MLflow run; default the active run, then `MLFLOW_RUN_ID`;
            without one the monitor still collects `findings`. A named run (`run_id`, or
            `MLFLOW_RUN_ID`) is looked up once, here: one that does not exist is an error.
        **thresholds: rule thresholds, see `Thresholds`.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed: among them a `run_id`
            the tracking store does not hold, or `params` that are not a pytree of arrays (a
            torch module: use `mlflow_plugins.watch`; a Flax module: pass its `nnx.Param` state).

    An exception that leaves the `with` block is recorded as the run's outcome (`fixlab.outcome`
    = `failed: ...` or `killed: ...`), and the run's health is then not `ok`.

    Example:
        >>> tx = monitored(optax.adam(1e-3))
        >>> with watch_jax(params) as monitor:
        ...     for step, (x, y) in enumerate(batches):
        ...         before = params
        ...         params, opt_state, metrics, inter = train_step(params, opt_state, x, y)
        ...         monitor.observe(step, opt_state, intermediates=inter,
        ...                         locate=lambda: (nnx.merge(graphdef, before, rest), (x,)))
        >>> [f.code for f in monitor.findings]
    """

    def __init__(self, params: Any, *, log_every: int | None = None, policy: str | None = None,
                 every_step: bool = False, rules: Iterable[Rule] = (), run_id: str | None = None,
                 tracking_uri: str | None = None, **thresholds: float) -> None:
        _check_params(params)
        self.t = Thresholds.from_kwargs(thresholds)
        self.policy = None if policy is None else check_policy(policy)
        self.log_every = None if log_every is None else check_log_every(log_every)
        self.every_step = bool(every_step)
        self.table = ParamTable.of(params)
        self.flow = GradFlow()
        report = RunReport.open(resolve_recorder(run_id, tracking_uri))
        self.session = Session([*builtin_rules(self.t), *check_rules(rules)], policy=self.policy or "warn",
                               report=report, owner="watch_jax()")
        report.use_grad_flow(self.flow)
        report.use_thresholds(self.t)
        self._pending: _Pending | None = None
        self._located: NonfiniteEvent | None = None
        self._reruns = 0
        self._checked = False
        self._warned_unsampled = False
        self._measured_at = -1  # the last measured update already judged

    @property
    def findings(self) -> list[Finding]:
        return list(self.session.findings)

    def observe(self, step: int, opt_state: Any, *, intermediates: Any = None,
                locate: Locate | None = None) -> None:
        """Reads what the last update left in `opt_state`; call it once per step, after it.

        Args:
            step: the step number, from 0 (metrics and findings are recorded at it).
            opt_state: the optimizer state the step returned (or `nnx.Optimizer.opt_state`).
            intermediates: what the forward sowed (`nnx.pop(model, nnx.Intermediate)`), for the
                normalization probes; None without probes.
            locate: returns `(model, args)`: the model merged with the parameters from *before*
                this update, and the batch inputs, so that `model(*args)` re-runs the forward.
                Called only if this step turns out non-finite.

        Raises:
            ValueError: `step` is not an integer >= 0, `opt_state` holds no `monitored` state,
                or that state does not match `params`, `log_every` or `policy`.
            TrainingStopped: policy "stop" met a critical finding.
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step={step!r} is out of range; allowed: an integer >= 0")
        step = int(step)
        state = find_state(opt_state)
        if not self._checked:
            self._check(state)
        reports = [self.session.guard(self._settle, StepReport(), what="watch_jax() status")]
        log_step = step % self.log_every == 0
        if self.every_step or log_step:
            reports.append(self.session.guard(lambda: self._judge(
                step, state, intermediates=intermediates, locate=locate, log_step=log_step),
                StepReport(), what="watch_jax() statistics"))
        else:
            # A copy: a train step that donates `opt_state` would free the original.
            self._pending = _Pending(step, jnp.copy(state.status), locate)
        self._stop_if(self.session.record(step, reports))
        if log_step:
            self.session.flush()

    @contextlib.contextmanager
    def evaluation(self, model: Any) -> Iterator[None]:
        """Marks an evaluation of the NNX `model`, checked once for eval/train mix-ups: an
        `nnx.Dropout` that drew random numbers, or `nnx.BatchNorm` statistics that changed
        (EVAL_IN_TRAIN_MODE: `model.eval()` forgotten), read from the model's state when the
        block begins and ends (one `jax.device_get` of both, at the end).

        Example:
            >>> model.eval()
            >>> with monitor.evaluation(model):
            ...     val_loss = sum(eval_step(model, x, y) for x, y in val_batches)
            >>> model.train()

        Raises:
            ValueError: `model` is not an `nnx.Module`.
        """
        if not isinstance(model, nnx.Module):
            raise ValueError(f"model={type(model).__name__} is not allowed; allowed: the nnx.Module "
                             "being evaluated")
        watch = self.session.guard(lambda: EvalWatch(model), what="watch_jax() evaluation")
        if watch is not None:
            self.session.guard(lambda: watch.begin(self.session.step), what="watch_jax() evaluation")
        try:
            yield
        finally:
            if watch is not None:
                report = self.session.guard(watch.end, StepReport(), what="watch_jax() evaluation")
                self._stop_if(self.session.record(self.session.step, [report]))

    def log_metrics(self, metrics: Mapping[str, float], *, step: int, epoch: int | None = None) -> None:
        """Logs the model's own metrics to the run (batched) and judges them by the metric rules.

        Raises:
            ValueError: a metric rule counts epochs and `epoch` was not given.
            TrainingStopped: policy "stop" met a critical finding.
        """
        self._stop_if(self.session.log_metrics(metrics, step=int(step), epoch=epoch))

    def state_dict(self) -> dict[str, Any]:
        """The rules' states and the findings, as plain values (save it with the train state).
        The last step observed is settled first, so the state covers every step up to it."""
        if not self.session.closed:
            last = self.session.guard(self._settle, StepReport(), what="watch_jax() status")
            self._stop_if(self.session.record(self.session.step, [last]))
        return {"session": self.session.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continues from `state_dict()`."""
        self.session.load_state_dict(state["session"])

    def close(self) -> None:
        """Settle the last step; write findings, tags, report and the last metrics. Idempotent."""
        if self.session.closed:
            return
        last = self.session.guard(self._settle, StepReport(), what="watch_jax() status")
        self.session.record(self.session.step, [last], policy="warn")
        self.session.close()

    def __enter__(self) -> "JaxMonitor":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.session.ended_by(exc)
        self.close()

    # steps ---------------------------------------------------------------------------------

    def _check(self, state: MonitoredState) -> None:
        """Configuration errors, once: the state must match `params` and the policy."""
        n, k = state.l2.shape[0], state.taps.shape[0]
        if (n, k) != (len(self.table.names), len(self.table.taps)):
            raise ValueError(
                f"opt_state's monitored() state has {n} parameters and {k} probe taps, but "
                f"params has {len(self.table.names)} and {len(self.table.taps)}: pass watch_jax "
                "the same parameter pytree as tx.init (after probe_norms)")
        optimizer_every = int(state.log_every)
        if self.log_every is not None and self.log_every != optimizer_every:
            raise ValueError(f"log_every={self.log_every} differs from the optimizer's "
                             f"monitored(log_every={optimizer_every}); pass the same value, or none")
        self.log_every = optimizer_every
        if self.policy == "skip_step" and not bool(state.skip_step):
            raise ValueError("policy='skip_step' needs the optimizer built with "
                             "monitored(inner, skip_step=True)")
        if self.policy is None:
            self.policy = self.session.policy = "skip_step" if bool(state.skip_step) else "warn"
        self._checked = True

    def _settle(self) -> StepReport:
        """The previous step's status, read now that a later step has been dispatched."""
        pending, self._pending = self._pending, None
        if pending is None:
            return StepReport()
        status = np.asarray(pending.status)
        return StepReport([*self._nonfinite(pending.step, status, pending.locate),
                           GradPresence.zero(pending.step, self.table.names, status == ZERO)])

    def _judge(self, step: int, state: MonitoredState, *, intermediates: Any,
               locate: Locate | None, log_step: bool) -> StepReport:
        """Every statistic of this step, from one host copy of the statistics and probes."""
        host = jax.device_get({"l2": state.l2, "status": state.status, "count": state.count,
                               "mean_abs": state.mean_abs, "sampled_at": state.sampled_at,
                               "taps": state.taps, "cvs": probe_cvs(intermediates),
                               **{f: getattr(state, f) for f in _UPDATE_FIELDS}})
        sampled = int(host["sampled_at"]) == int(host["count"]) - 1
        if log_step and not sampled:
            self._warn_unsampled(step)
        snap = grad_snapshot(step, self.table, host["l2"], host["mean_abs"] if sampled else None)
        self.flow.add(snap)
        report = StepReport([*self._nonfinite(step, host["status"], locate), snap],
                            grad_metrics(snap, per_parameter=log_step))
        probes = norm_probes(step, self.table, host["taps"], host["cvs"]) if sampled else []
        report.summaries += probes
        if int(host["measured_at"]) not in (-1, self._measured_at):
            self._measured_at = int(host["measured_at"])
            report.summaries.append(update_snapshot(step, self.table, host))
        if log_step:
            report.metrics.update(probe_metrics(probes))
        return report

    def _nonfinite(self, step: int, status: np.ndarray, locate: Locate | None) -> list[NonfiniteEvent]:
        """The event of a step whose gradients hold NaN/Inf: the module that produced it when a
        re-run finds one, else the first such parameter."""
        bad = np.flatnonzero(status >= NAN)
        if bad.size == 0:
            return []
        if self._located is None and locate is not None and self._reruns < _MAX_RERUNS:
            self._reruns += 1
            self._located = self.session.guard(lambda: self._locate(step, locate),
                                               what="watch_jax() locating a non-finite value")
        if self._located is not None:
            return [replace(self._located, step=step)]
        i = int(bad[0])
        return [NonfiniteEvent(step, "gradient", self.table.names[i], self.table.dtypes[i], None,
                               nan=bool(status[i] == NAN), inf=bool(status[i] == INF))]

    def _locate(self, step: int, locate: Locate) -> NonfiniteEvent | None:
        model, args = locate()
        return locate_nonfinite(model, tuple(args) if isinstance(args, (tuple, list)) else (args,),
                                step)

    def _stop_if(self, stop: Finding | None) -> None:
        if stop is not None:
            error = TrainingStopped(stop)
            self.session.ended_by(error)  # the report is written by close(), before the raise
            self.close()
            raise error

    def _warn_unsampled(self, step: int) -> None:
        if not self._warned_unsampled:
            self._warned_unsampled = True
            warnings.warn(f"fixlab: step {step} is a log step but the optimizer did not sample "
                          "it (mean |grad|, probes): count steps from 0, one observe per update",
                          RuntimeWarning, stacklevel=4)


def _check_params(params: Any) -> None:
    """`params` is a pytree of arrays, not another framework's model.

    Raises:
        ValueError: a torch module or tensor, a Flax module (its state holds more than the
            parameters the optimizer updates), or a leaf that is not an array, naming it.
    """
    name, kind = type(params).__name__, kind_of(params)
    if kind == "a torch.nn.Module":
        raise ValueError(f"params={name} is a torch.nn.Module; allowed: a JAX parameter pytree "
                         "(e.g. nnx.state(model, nnx.Param)); for PyTorch use "
                         "mlflow_plugins.watch(model, optimizer)")
    if kind == "a Flax NNX module":
        raise ValueError(f"params={name} is a Flax NNX module; allowed: its parameter state, "
                         "nnx.state(model, nnx.Param), the pytree the optimizer updates")
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        where = jax.tree_util.keystr(path)
        if kind_of(leaf) == "a torch.Tensor":
            raise ValueError(f"params leaf {where} is a torch.Tensor; allowed: JAX or NumPy arrays; "
                             "for PyTorch use mlflow_plugins.watch(model, optimizer)")
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")) and not isinstance(leaf, (int, float, complex)):
            raise ValueError(f"params leaf {where} is {type(leaf).__name__}; allowed: arrays "
                             "(JAX or NumPy) or numbers")


def watch_jax(params: Any, *, log_every: int | None = None, policy: str | None = None,
              every_step: bool = False, rules: Iterable[Rule] = (), run_id: str | None = None,
              tracking_uri: str | None = None, **thresholds: float) -> JaxMonitor:
    """Watch a JAX/optax loop whose optimizer is `monitored(...)`; see `JaxMonitor`."""
    return JaxMonitor(params, log_every=log_every, policy=policy, every_step=every_step,
                      rules=rules, run_id=run_id, tracking_uri=tracking_uri, **thresholds)

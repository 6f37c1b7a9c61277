"""`Rule`: one training-health check as a pure object, and `RuleSet`, which runs several.

A rule follows optax's shape: `init()` returns its state, `update(summary, state)` returns the
findings this summary triggers and the next state, and never mutates the state it was given.
State is a plain value (numbers, strings, tuples, lists, dicts, sets, numpy arrays), so a
checkpoint of the states is a checkpoint of the rules (`RuleSet.state_dict`). Built-in codes and
a user's own are written the same way and recorded the same way.

Summaries are what adapters (torch, Lightning, JAX) extract from training: `GradPresence` every
step, `GradSnapshot`, `UpdateSnapshot`, `GradReset` and `AutocastCoverage` on sampled steps,
`NonfiniteEvent`, `AmpStep`, `NormProbe`, `EvalCheck` per evaluation, `ReplicaCheck` under DDP,
and `MetricValue` for metrics the model logs. A rule names the summary types it reads in `accepts`,
and the metrics it reads in `reads` (with `per`: whether it judges them every step or epoch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable, Literal, Sequence

from ..findings import Finding
from ..outcome import error_line
from .plain import from_plain, to_plain

State = Any


class Rule(ABC):
    """A training-health rule: `init() -> state`, `update(summary, state) -> (findings, state)`.

    Subclass it for a rule over any of the plugin's summaries (set `accepts` and `name`), or
    build a metric rule with `Rule.metric(...)`. `update` must be pure: return a new state
    rather than changing the one given.

    Attributes:
        name: the rule's key in checkpoints; unique among the rules of one monitor or callback.
        accepts: the summary types `update` reads; others never reach it.
        reads: the metrics (names as logged) a rule accepting `MetricValue` reads: the Lightning
            callbacks read exactly these from `trainer.callback_metrics` (each read is a host
            sync); `log_metrics` passes every metric it is given.
        per: when the metrics in `reads` are read, "step" (after every batch) or "epoch" (after
            every epoch; `log_metrics` then needs `epoch=`).

    Example:
        >>> class NoProbeSpread(Rule):
        ...     name, accepts = "no_probe_spread", (NormProbe,)
        ...     def init(self): return frozenset()
        ...     def update(self, probe, seen):
        ...         if probe.cv_in > 0 or probe.module in seen:
        ...             return [], seen
        ...         return [Finding("FLAT_INPUT", "info", probe.step, probe.module)], seen | {probe.module}

        A rule over logged metrics declares which it reads, and when:

        >>> class LossRises(Rule):
        ...     name, accepts, reads, per = "loss_rises", (MetricValue,), ("val/loss",), "epoch"
        ...     def init(self): return None  # the previous epoch's loss
        ...     def update(self, value, last):
        ...         rises = last is not None and value.value > 2 * last
        ...         found = [Finding("LOSS_RISES", "warning", value.step, value.name)] if rises else []
        ...         return found, value.value
    """

    name: str = ""
    accepts: tuple[type, ...] = ()
    reads: tuple[str, ...] = ()
    per: Literal["step", "epoch"] = "step"

    @abstractmethod
    def init(self) -> State:
        """The state before the first summary."""

    @abstractmethod
    def update(self, summary: Any, state: State) -> tuple[list[Finding], State]:
        """The findings this summary triggers, and the next state (`state` is left unchanged)."""

    @staticmethod
    def metric(metric: str, *, code: str, below: float | None = None, above: float | None = None,
               relative_to: str | None = None, for_steps: int | None = None,
               for_epochs: int | None = None, severity: str = "warning", hint: str = "",
               name: str | None = None) -> "Rule":
        """A rule over a metric the model logs, or over its ratio to another (`relative_to`);
        see `MetricRule` for the arguments.

        Example:
            >>> Rule.metric("train/pseudo_label_rate", below=0.2, for_epochs=3,
            ...             code="PSEUDO_LABELS_UNUSED", hint="lower the confidence threshold")
            >>> Rule.metric("pu/prior_configured", relative_to="pu/prior_estimated", below=0.8,
            ...             above=1.25, for_epochs=1, code="PU_PRIOR_MISMATCH")
        """
        from .metric_rule import MetricRule

        return MetricRule(metric, code=code, below=below, above=above, relative_to=relative_to,
                          for_steps=for_steps, for_epochs=for_epochs, severity=severity, hint=hint,
                          name=name)


def metrics_read(rules: Iterable[Any], per: str) -> set[str]:
    """The metric names that the rules judging every `per` ("step" or "epoch") declare in
    `reads`: what an adapter must hand them, and when."""
    return {n for r in rules if getattr(r, "per", "step") == per for n in getattr(r, "reads", ())}


def check_rules(rules: object) -> list[Any]:
    """The `rules=` argument as a list: a list (or other iterable) of rules, not one rule."""
    if isinstance(rules, (str, bytes, Rule)) or not isinstance(rules, Iterable):
        raise ValueError(f"rules={rules!r} is not allowed; allowed: a list of rules, e.g. "
                         "[Rule.metric('val/acc', below=0.2, for_epochs=3, code='NOT_LEARNING')]")
    return list(rules)


class RuleSet:
    """Runs rules over summaries and holds their states: the one stateful piece.

    A rule that raises does not stop training or the other rules: the failure becomes a
    `DIAGNOSTICS_FAILED` finding (once per rule), so a blind check never reads as a healthy run.

    Args:
        rules: the rules; names must be unique.

    Raises:
        ValueError: an object that is not a rule, or two rules with the same name.
    """

    def __init__(self, rules: Iterable[Any]) -> None:
        self.rules: tuple[Any, ...] = tuple(rules)
        for rule in self.rules:
            _check_rule(rule)
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rules share the name(s) {duplicates}; give each rule its own name")
        self.states: dict[str, State] = {r.name: r.init() for r in self.rules}
        self._by_type: dict[type, tuple[Any, ...]] = {}
        self._failed: set[str] = set()

    def accepts(self, kind: type) -> bool:
        """Whether any rule reads summaries of this type (adapters skip work nobody reads)."""
        return bool(self._for(kind))

    def observe(self, summary: Any) -> list[Finding]:
        """Every rule that accepts `summary` (and, for a summary read at a cadence, counts at that
        cadence: `per`) updates its state; their findings, in rule order."""
        findings: list[Finding] = []
        per = getattr(summary, "per", None)
        for rule in self._for(type(summary)):
            if per is not None and getattr(rule, "per", per) != per:
                continue  # read for the rules of the other cadence
            try:
                found, self.states[rule.name] = rule.update(summary, self.states[rule.name])
            except Exception as error:  # noqa: BLE001 - a rule's failure must not stop training
                findings += self._failure(rule, summary, error)
                continue
            findings += found
        return findings

    def state_dict(self) -> dict[str, Any]:
        """Every rule's state as plain Python values (safe for `torch.load(weights_only=True)`)."""
        return {"states": {name: to_plain(state) for name, state in self.states.items()},
                "failed": sorted(self._failed)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the states of the rules present in both; a rule new since then starts fresh."""
        for name, plain in state_dict.get("states", {}).items():
            if name in self.states:
                self.states[name] = from_plain(plain)
        self._failed = set(state_dict.get("failed", ())) & set(self.states)

    def _for(self, kind: type) -> tuple[Any, ...]:
        if kind not in self._by_type:
            self._by_type[kind] = tuple(r for r in self.rules if issubclass(kind, tuple(r.accepts)))
        return self._by_type[kind]

    def _failure(self, rule: Any, summary: Any, error: Exception) -> list[Finding]:
        if rule.name in self._failed:
            return []
        self._failed.add(rule.name)
        return [Finding.of("DIAGNOSTICS_FAILED", int(getattr(summary, "step", 0)), f"rule {rule.name}",
                           {"error": error_line(error), "summary": type(summary).__name__})]


def _check_rule(rule: Any) -> None:
    missing = [a for a in ("name", "accepts", "init", "update") if not hasattr(rule, a)]
    if missing:
        raise ValueError(f"rules entry {rule!r} is not a rule: it lacks {missing}; subclass "
                         "mlflow_plugins.Rule or use Rule.metric(...)")
    if not isinstance(rule.name, str) or not rule.name:
        raise ValueError(f"rule {type(rule).__name__} has name={rule.name!r}; allowed: a non-empty string")
    accepts = rule.accepts
    if not isinstance(accepts, Sequence) or not accepts or not all(isinstance(t, type) for t in accepts):
        raise ValueError(f"rule {rule.name!r} has accepts={accepts!r}; allowed: a non-empty tuple "
                         "of summary types, e.g. (GradSnapshot,)")
    reads = getattr(rule, "reads", ())
    if isinstance(reads, str) or not isinstance(reads, Sequence) or \
            not all(isinstance(n, str) and n for n in reads):
        raise ValueError(f"rule {rule.name!r} has reads={reads!r}; allowed: a tuple of metric "
                         "names, e.g. ('val/acc',)")
    per = getattr(rule, "per", "step")
    if reads and per not in ("step", "epoch"):
        raise ValueError(f"rule {rule.name!r} has per={per!r}; allowed: 'step' or 'epoch'")

"""The one result type of every diagnostic: a `Finding`, and the catalog of codes."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Iterable, Literal, Mapping, Sequence

Health = Literal["ok", "warning", "critical"]
HEALTHS: tuple[str, ...] = ("ok", "warning", "critical")


def check_health(health: object) -> str:
    """A run's health word, as the `fixlab.health` tag of runs and model versions holds it."""
    if health not in HEALTHS:
        raise ValueError(f"health={health!r} is not a health; allowed: {list(HEALTHS)}")
    return str(health)


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class CodeInfo:
    """What a finding code means, how bad it is by default, what one finding says, and the fix.

    `says` is a template over the finding's `step`, `where` and evidence keys (a finding's
    `message`); `hint` is generic advice about any model: documents are cited separately
    (`Finding.document`), by the projects that reproduce them.
    """

    severity: Severity
    meaning: str
    says: str
    hint: str


# The built-in codes: DESIGN.md's table, and DIAGNOSTICS_FAILED. Users' rules add their own.
CODES: Mapping[str, CodeInfo] = {
    "GRAD_NEVER_UPDATED": CodeInfo(
        Severity.CRITICAL,
        "a parameter the optimizer holds got no gradient (None or all-zero) for several consecutive "
        "optimizer steps (never_updated_steps, 3 by default)",
        "no gradient (None or all-zero) in {steps_without_gradient} consecutive optimizer steps, "
        "steps {step} to {last_step}",
        "Find where the gradient stops: a torch.no_grad() block, .detach(), a round trip through "
        "numpy, a module run only in eval mode, or an output that never reaches the loss; if no "
        "parameter has one, check that optimizer.zero_grad() is not called between backward() and "
        "step(). If the parameters are frozen on purpose, set requires_grad=False or leave them "
        "out of the optimizer.",
    ),
    "GRAD_VANISHING": CodeInfo(
        Severity.WARNING,
        "a layer's mean absolute gradient is below the vanishing threshold",
        "mean |gradient| {mean_abs_grad:.3g} is below {threshold:.3g} at step {step}",
        "Look for saturating activations (sigmoid, tanh), a normalization or detach in the path, "
        "or a loss that barely depends on this layer; residual connections, a better "
        "initialisation or a normalization before the activation let the gradient through.",
    ),
    "GRAD_EXPLODING": CodeInfo(
        Severity.CRITICAL,
        "the total or a layer gradient norm is above the exploding threshold",
        "gradient norm {grad_norm:.4g} is above {threshold:.4g} at step {step}",
        "Clip gradients (torch.nn.utils.clip_grad_norm_ or optax.clip_by_global_norm, e.g. max "
        "norm 1.0), lower the learning rate or add a warm-up, and check the loss scale.",
    ),
    "GRAD_NORM_OUT_OF_RANGE": CodeInfo(
        Severity.WARNING,
        "the total gradient norm stayed outside the healthy band for a sustained window",
        "total gradient norm stayed outside [{band_low:g}, {band_high:g}] for {window} sampled "
        "steps from step {step} (median {median_grad_norm:.3g})",
        "Check the learning rate, gradient clipping and the loss scale: a norm far below the band "
        "often means a saturated or collapsed model, far above it an unstable one.",
    ),
    "NONFINITE": CodeInfo(
        Severity.CRITICAL,
        "NaN or Inf in the loss, a gradient or an activation",
        "the {source} went non-finite at step {step} (dtype {dtype}, autocast {autocast})",
        "Run the named module in float32 (disable autocast around it), use bfloat16 instead of "
        "float16, or turn mixed precision off; without autocast, look for a log, sqrt or division "
        "of values that reach zero, or a learning rate that diverges.",
    ),
    "AMP_STEPS_SKIPPED": CodeInfo(
        Severity.WARNING,
        "the gradient scaler skipped optimizer steps or its scale collapsed",
        "the gradient scaler skipped {skipped_in_window} of the last {window} steps "
        "({skipped_total} in all) by step {step}; scale {scale:.3g}",
        "Keep the operations that overflow in float32, or use bfloat16, which needs no gradient "
        "scaler; a scale that keeps falling means nearly every step overflows.",
    ),
    "NORM_GRAD_ATTENUATION": CodeInfo(
        Severity.WARNING,
        "a normalization shrinks the gradient passing back through it",
        "passes back {grad_ratio:.3g} of the gradient it receives (threshold {threshold:g}), "
        "from step {step}",
        "Remove or move the normalization, or rescale its input: a normalization of inputs with a "
        "large norm divides the gradient by that norm.",
    ),
    "NORM_ERASES_MAGNITUDE": CodeInfo(
        Severity.INFO,
        "a normalization removes the spread of token/sample magnitudes it received",
        "the spread of magnitudes (coefficient of variation) falls from {magnitude_cv_in:.3g} to "
        "{magnitude_cv_out:.3g} through it, from step {step}",
        "If magnitudes carry information (attention or pooling by magnitude, confidence), drop "
        "or move the normalization; otherwise this is what it is for.",
    ),
    "PARAMS_FROZEN": CodeInfo(
        Severity.INFO,
        "the optimizer holds parameters frozen on purpose (requires_grad=False); they are not "
        "expected to get a gradient, so they are not GRAD_NEVER_UPDATED",
        "{n_frozen} of the {n_params} parameters the optimizer holds are frozen (requires_grad=False): "
        "{frozen}",
        "Nothing to do if this is the freeze you meant. If one of them should learn, set "
        "requires_grad=True on it (and check the optimizer was built after the model was final).",
    ),
    "UPDATES_NOT_APPLIED": CodeInfo(
        Severity.WARNING,
        "parameters that get a non-vanishing gradient do not change across optimizer steps: a "
        "learning rate of 0 (or a schedule that drove it there), a parameter left out of the "
        "optimizer's param groups, an optimizer built for an earlier copy of the model, a step "
        "that no longer applies its update",
        "gradient norm {grad_norm:.3g} but no change (relative update at most {ratio_max:.2g}) on the "
        "measured optimizer steps {step} to {last_step}: {cause}",
        "Check the learning rate each param group has (optimizer.param_groups[i]['lr'] and the "
        "scheduler), that every trained parameter is in a param group, and that the optimizer was "
        "built after the model was final (created, moved, wrapped). A freeze is clearer, and "
        "cheaper, with requires_grad=False (JAX: stop_gradient) than with a learning rate of 0.",
    ),
    "GRAD_NOT_RESET": CodeInfo(
        Severity.CRITICAL,
        "gradients are not cleared between optimizer steps, so every step applies the sum of all "
        "earlier gradients (optimizer.zero_grad() forgotten, or called on another optimizer)",
        "{n_stale} of {n_params} gradients still held the previous step's values when the next "
        "backward added to them, after step {step}: {params}",
        "Call optimizer.zero_grad() (or model.zero_grad()) once per optimizer step, on the optimizer "
        "that holds these parameters. Accumulating over micro-batches is fine: clear after each "
        "step. Clipping or a lower learning rate would only hide this.",
    ),
    "EVAL_IN_TRAIN_MODE": CodeInfo(
        Severity.WARNING,
        "during evaluation, modules whose behaviour depends on the mode (dropout, batch norm) were "
        "still in training mode",
        "{n_modules} module(s) in training mode while evaluating, from step {step}: {modules}",
        "Call model.eval() before evaluating and model.train() after (Lightning does both unless "
        "a hook or a submodule's train() overrides them); a module kept in a plain Python list "
        "or dict is not a submodule: use nn.ModuleList / nn.ModuleDict.",
    ),
    "EVAL_NOT_DETERMINISTIC": CodeInfo(
        Severity.WARNING,
        "the model's evaluation outputs for the same batch differ between two passes: dropout or "
        "another random operation is still active in evaluation",
        "two evaluation passes over one batch differ by up to {max_abs_diff:.3g} (relative "
        "{rel_diff:.2g}) at step {step}",
        "Look for a functional dropout without training=self.training (F.dropout(x, p) is always "
        "on), a dropout module outside the module tree, or sampling that evaluation should not "
        "do; if the model samples on purpose in evaluation, ignore this.",
    ),
    "EVAL_UPDATES_STATISTICS": CodeInfo(
        Severity.WARNING,
        "evaluation changed running statistics (batch-norm running mean/variance): the model "
        "learns from the evaluation data and its evaluation depends on batch composition",
        "{n_buffers} running statistic(s) changed during evaluation at step {step}: {buffers}",
        "Evaluate in eval mode (model.eval()); a batch norm that must stay in training mode can "
        "be built with track_running_stats=False.",
    ),
    "EVAL_BEFORE_INIT": CodeInfo(
        Severity.WARNING,
        "the model was evaluated before its first training forward, while a layer that "
        "initialises lazily in training mode (spectral normalization's power iteration) was not "
        "initialised yet: the evaluation measures an uninitialised model",
        "evaluated at step {step} before any training forward; not initialised yet: {modules}",
        "Run one training-mode forward before evaluating (Lightning's sanity check evaluates "
        "first: num_sanity_val_steps=0 skips it), or ignore the first evaluation.",
    ),
    "AUTOCAST_NOT_APPLIED": CodeInfo(
        Severity.INFO,
        "inside an autocast region, matrix-multiplying modules ran in a wider dtype than the "
        "region asked for: the mixed-precision speed-up is absent there",
        "{n_modules} of {n_checked} matrix-multiplying modules ran in {dtype} while autocast asked "
        "for {requested} (step {step}): {modules}",
        "Check that autocast's device_type matches where the model runs, that these modules are "
        "not under autocast(enabled=False) or in float64, and that the operation has a "
        "lower-precision kernel on this device; if float32 is meant there, ignore this.",
    ),
    "REPLICAS_DIVERGED": CodeInfo(
        Severity.CRITICAL,
        "data-parallel replicas hold different parameters: the processes train different models",
        "{n_differ} parameter(s) differ across the {world_size} ranks at step {step} (largest "
        "relative difference {max_rel_diff:.3g}): {params}",
        "Make every rank take the same update: run the forward through the DDP wrapper (not "
        "model.module), do not wrap or move the model after building the optimizer, apply "
        "clipping and loss scaling on every rank, and do not skip steps on one rank only.",
    ),
    "DIAGNOSTICS_FAILED": CodeInfo(
        Severity.WARNING,
        "a fixlab check failed and was skipped, so this run's health is not fully known",
        "the check failed at step {step}: {error}",
        "Training went on without that check: do not read the run as healthy; report the error "
        "with the code that produced it.",
    ),
}
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def check_code(code: object, argument: str = "code") -> str:
    """A finding code: upper-case letters, digits and underscores, starting with a letter."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise ValueError(f"{argument}={code!r} is not a finding code; allowed: upper-case letters, "
                         "digits and '_', starting with a letter (e.g. 'PSEUDO_LABELS_UNUSED')")
    return code


def check_severity(severity: object) -> Severity:
    """A severity from its value ("info", "warning", "critical") or the enum."""
    try:
        return Severity(severity)
    except ValueError:
        raise ValueError(f"severity={severity!r} is not a severity; allowed: "
                         f"{[s.value for s in Severity]}") from None


def name_list(names: Iterable[str], shown: int = 5) -> str:
    """The first `shown` names, comma-separated, then "...": evidence that names the places of a
    finding about many without flooding its message (the evidence also counts them)."""
    names = list(names)
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def meaning(code: str) -> str:
    """What a built-in code means; "" for a code a user's rule defines."""
    info = CODES.get(code)
    return info.meaning if info is not None else ""


def describe(code: str, step: int, evidence: Mapping[str, Any]) -> str:
    """What one finding says about its place, from its evidence: the built-in code's template
    filled in, else (a user's code, or evidence the template does not know) the evidence itself."""
    info = CODES.get(code)
    if info is not None:
        try:
            return info.says.format_map({"step": step, **evidence})
        except (KeyError, ValueError, TypeError, IndexError):
            pass
    numbers = ", ".join(f"{k}={_short(v)}" for k, v in evidence.items())
    return f"{meaning(code) or code} at step {step}" + (f" ({numbers})" if numbers else "")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem: what, how bad, when first seen, where, the numbers, the fix.

    `code` is a built-in code (`CODES`) or one a user's rule defines. `message` says what was seen
    at `where` (filled from the evidence when not given), `hint` is the fix, and `document` cites
    the research note whose failure this finding reproduces (set by the projects, "" otherwise).
    """

    code: str
    severity: Severity
    step: int
    where: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    hint: str = ""
    message: str = ""
    document: str = ""

    def __post_init__(self) -> None:
        check_code(self.code)
        object.__setattr__(self, "severity", check_severity(self.severity))
        if not self.message:
            object.__setattr__(self, "message", describe(self.code, self.step, self.evidence))

    @classmethod
    def of(cls, code: str, step: int, where: str, evidence: Mapping[str, Any] | None = None,
           severity: Severity | None = None, message: str = "") -> "Finding":
        """A finding with the catalog's default severity and hint for built-in `code`; its message
        is the code's template filled from `evidence` unless one is given."""
        info = CODES[code]
        return cls(code, severity or info.severity, int(step), where, dict(evidence or {}), info.hint,
                   message)

    @property
    def key(self) -> tuple[str, str]:
        """Identity for de-duplication: a code at a place is reported once."""
        return (self.code, self.where)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        d["evidence"] = dict(self.evidence)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Finding":
        return cls(d["code"], Severity(d["severity"]), int(d["step"]), d["where"],
                   dict(d.get("evidence", {})), d.get("hint", ""), d.get("message", ""),
                   d.get("document", ""))


def overall_health(findings: Iterable[Finding]) -> Health:
    """`critical` if any finding is critical, `warning` if any warns, else `ok` (info is ok)."""
    severities = {f.severity for f in findings}
    if Severity.CRITICAL in severities:
        return "critical"
    if Severity.WARNING in severities:
        return "warning"
    return "ok"


def announcement(findings: Sequence[Finding], *, places_shown: int = 3) -> list[str]:
    """One console line per code among the findings that are not info: the code, its severity,
    where (the first few places and how many more), what was seen at the first, and the fix."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.severity is not Severity.INFO:
            groups.setdefault(f.code, []).append(f)
    lines = []
    for code, group in groups.items():
        worst = max(group, key=lambda f: _RANK[f.severity])
        names = ", ".join(f.where for f in group[:places_shown])
        more = len(group) - places_shown
        where = (f"at {names}" if len(group) == 1 else
                 f"on {len(group)} places ({names}{f' and {more} more' if more > 0 else ''})")
        lines.append(f"fixlab: {code} ({worst.severity.value}) {where}: {group[0].message}."
                     + (f" Fix: {group[0].hint}" if group[0].hint else ""))
    return lines


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def finding_codes(findings: Iterable[Finding]) -> str:
    """The `fixlab.findings` tag: the codes that make a run unhealthy (warning or critical), the
    critical ones first, comma-separated; "none" when there is none, so a healthy run says so."""
    return _codes(f for f in findings if f.severity is not Severity.INFO)


def info_codes(findings: Iterable[Finding]) -> str:
    """The `fixlab.info` tag: the codes of information findings (health stays ok), or "none"."""
    return _codes(f for f in findings if f.severity is Severity.INFO)


def _codes(findings: Iterable[Finding]) -> str:
    worst: dict[str, int] = {}
    for f in findings:
        worst[f.code] = max(worst.get(f.code, 0), _RANK[f.severity])
    return ",".join(sorted(worst, key=lambda code: (-worst[code], code))) or NO_CODES


NO_CODES = "none"
FINDINGS_TAG = "fixlab.findings"
INFO_TAG = "fixlab.info"

"""The one result type of every diagnostic: a `Finding`, and the catalog of codes."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Iterable, Literal, Mapping

Health = Literal["ok", "warning", "critical"]


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class CodeInfo:
    """What a finding code means, how bad it is by default, and the documented fix."""

    severity: Severity
    meaning: str
    hint: str


# The built-in codes: DESIGN.md's table, and DIAGNOSTICS_FAILED. Users' rules add their own. Hints cite the research note (shared/seeds) the fix comes from.
CODES: Mapping[str, CodeInfo] = {
    "GRAD_NEVER_UPDATED": CodeInfo(
        Severity.CRITICAL,
        "a parameter the optimizer holds got no gradient (None or all-zero) for K steps",
        "Document 001: extract_features() ran the representation stage in eval() under "
        "torch.no_grad() and converted to numpy, so its parameters never received a gradient. "
        "Fix: in training, call the module in train() mode with gradients enabled and return the "
        "tensor (fixes 1-4), and log parameter counts to check every component is optimized (fix 6).",
    ),
    "GRAD_VANISHING": CodeInfo(
        Severity.WARNING,
        "a layer's mean absolute gradient is below the vanishing threshold",
        "Document 002 monitored vanishing gradients (< 1e-7): check for saturating activations, "
        "a normalization or detach in the path, or a learning signal that does not reach this layer.",
    ),
    "GRAD_EXPLODING": CodeInfo(
        Severity.CRITICAL,
        "the total or a layer gradient norm is above the exploding threshold",
        "Document 002 flagged gradient norms > 100: clip gradients "
        "(torch.nn.utils.clip_grad_norm_, the document used 1.0), lower the learning rate, "
        "or add normalization.",
    ),
    "GRAD_NORM_OUT_OF_RANGE": CodeInfo(
        Severity.WARNING,
        "the total gradient norm stayed outside the healthy band for a sustained window",
        "Document 004 expects a total gradient norm between 0.1 and 10: check the learning rate, "
        "gradient clipping (the document used 0.5) and the loss scale.",
    ),
    "NONFINITE": CodeInfo(
        Severity.CRITICAL,
        "NaN or Inf in the loss, a gradient or an activation",
        "Document 003: float16 autocast produced NaN in complex-magnitude computations. "
        "Run the named module in float32 (disable autocast around it), try bfloat16, "
        "or disable AMP.",
    ),
    "AMP_STEPS_SKIPPED": CodeInfo(
        Severity.WARNING,
        "the gradient scaler skipped optimizer steps or its scale collapsed",
        "Document 003: AMP overflowed in float16. Keep the overflowing operations in float32, "
        "or use bfloat16, which needs no gradient scaler.",
    ),
    "NORM_GRAD_ATTENUATION": CodeInfo(
        Severity.WARNING,
        "a normalization shrinks the gradient passing back through it",
        "Document 000: L2-normalizing the CPC latents (z / |z|) killed gradients; removing it "
        "(fix #2) let the model learn. Remove the normalization, or rescale its input.",
    ),
    "NORM_ERASES_MAGNITUDE": CodeInfo(
        Severity.INFO,
        "a normalization removes the spread of token/sample magnitudes it received",
        "Document 003: LayerNorm destroyed the magnitude-based attention signal "
        "('polarization'); norm_type='none' performed best. Document 000: the L2 normalization "
        "of the CPC latents was removed (fix #2). If magnitudes carry information, drop or move "
        "the normalization.",
    ),
    "DIAGNOSTICS_FAILED": CodeInfo(
        Severity.WARNING,
        "a fixlab check failed and was skipped, so this run's health is not fully known",
        "The evidence names the check and its error. Training went on without that check: do not "
        "read the run as healthy; report the error with the code that produced it.",
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


def meaning(code: str) -> str:
    """What a built-in code means; "" for a code a user's rule defines."""
    info = CODES.get(code)
    return info.meaning if info is not None else ""


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem: what, how bad, when first seen, where, the numbers, the fix.

    `code` is a built-in code (`CODES`) or one a user's rule defines; `hint` is the fix.
    """

    code: str
    severity: Severity
    step: int
    where: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    hint: str = ""

    def __post_init__(self) -> None:
        check_code(self.code)
        object.__setattr__(self, "severity", check_severity(self.severity))

    @classmethod
    def of(cls, code: str, step: int, where: str, evidence: Mapping[str, Any] | None = None,
           severity: Severity | None = None) -> "Finding":
        """A finding with the catalog's default severity and hint for built-in `code`."""
        info = CODES[code]
        return cls(code, severity or info.severity, int(step), where, dict(evidence or {}), info.hint)

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
                   dict(d.get("evidence", {})), d.get("hint", ""))


def overall_health(findings: Iterable[Finding]) -> Health:
    """`critical` if any finding is critical, `warning` if any warns, else `ok` (info is ok)."""
    severities = {f.severity for f in findings}
    if Severity.CRITICAL in severities:
        return "critical"
    if Severity.WARNING in severities:
        return "warning"
    return "ok"


def finding_codes(findings: Iterable[Finding]) -> str:
    """The comma-separated, sorted, de-duplicated codes for the `fixlab.findings` tag."""
    return ",".join(sorted({f.code for f in findings}))

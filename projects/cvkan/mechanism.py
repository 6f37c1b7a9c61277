"""How float16 breaks the polarizing network: the report section of `cvkan_amp_fp16`, written from
what the run measured (the located finding, the largest log-magnitude per epoch), not assumed."""

from __future__ import annotations

import html
import math
from typing import Protocol, Sequence

from mlflow_plugins.findings import Finding

__all__ = ["FLOAT16_MAX", "FLOAT16_EXP_LIMIT", "float16_section", "first_crossing"]

FLOAT16_MAX = 65504.0
FLOAT16_EXP_LIMIT = math.log(FLOAT16_MAX)  # exp(x) is inf in float16 for x above ~11.09

WORKAROUND = "Disable AMP as default workaround"  # the document's, done
OPEN_ITEMS = ("Investigate selective AMP (real-valued layers only)", "Test bfloat16 instead of float16")


class _History(Protocol):
    def series(self, key: str) -> list[float]: ...


def first_crossing(values: Sequence[float], limit: float) -> int | None:
    """The first epoch (from 1) whose value exceeds `limit`; None if none did."""
    return next((i + 1 for i, v in enumerate(values) if v > limit), None)


def float16_section(findings: Sequence[Finding], history: _History) -> str:
    """HTML: where the run went non-finite, why (exp of a log-magnitude above float16's range), what
    the document did about it, and the better fixes."""
    logmag = [v for v in history.series("polar/max_log_magnitude") if math.isfinite(v)]
    crossed = first_crossing(logmag, FLOAT16_EXP_LIMIT)
    located = [f for f in findings if f.code == "NONFINITE"]
    skipped = [f for f in findings if f.code == "AMP_STEPS_SKIPPED"]
    top = max(logmag) if logmag else math.nan
    parts = []
    if located:
        first = min(located, key=lambda f: f.step)
        parts.append(f"<p>First non-finite value: <code>{html.escape(first.where)}</code> at step {first.step} "
                     f"({html.escape(first.message)}).</p>")
    else:
        parts.append("<p>No non-finite value was seen in this run.</p>")
    if skipped:
        parts.append(f"<p>The gradient scaler: {html.escape(skipped[-1].message)}.</p>")
    parts.append(
        "<p>Mechanism. Each polarizing block predicts a token's log-magnitude with a real network and turns it "
        "back into a magnitude with <code>exp()</code> (<code>MagnitudeExp</code>). Under float16 autocast on a "
        "CPU the network's output is float16 and the exponential stays float16, whose largest value is "
        f"{FLOAT16_MAX:.0f}: any log-magnitude above log(65504) = {FLOAT16_EXP_LIMIT:.2f} becomes inf, and "
        "inf in a complex number gives NaN phases and NaN gradients downstream. Polarization is the model "
        "making important tokens larger, so the log-magnitudes grow with training: the largest reached "
        f"{top:.2f} in this run"
        + (f", first above {FLOAT16_EXP_LIMIT:.2f} in epoch {crossed}." if crossed else
           ", below the limit" + ("; the non-finite value above came from elsewhere." if located else
                                  ", which is why nothing overflowed here."))
        + " (PyTorch's CUDA autocast runs exp() in float32, so on a GPU this forward overflow does not "
          "happen in this form; not measured here, this machine has no GPU.)</p>")
    parts.append(
        f"<p>The document's workaround: \"{WORKAROUND}\". That gives up the speed-up everywhere. Better, as its "
        f"open items suggest (\"{OPEN_ITEMS[0]}\", \"{OPEN_ITEMS[1]}\"): bfloat16 has float32's exponent range "
        "(exp overflows only above ~88.7), so bfloat16 autocast on the real sub-networks with the complex "
        "parts in complex64 (<code>cvkan_amp_bf16</code>, precision mode <code>bf16_real_only</code>) trains "
        "without a scaler; or keep float16 and run <code>MagnitudeExp</code> in float32 "
        "(<code>torch.autocast(device, enabled=False)</code> around the exponential, its input cast to float32).</p>")
    return "\n".join(parts)

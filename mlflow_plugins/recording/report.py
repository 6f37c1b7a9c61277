"""The health report: a self-contained HTML page and the gradient-flow figure it embeds.

The page is what a user sees in the MLflow UI's artifact view, which shows HTML in a sandboxed
frame: so CSS is inline, the figure is a base64 PNG, and nothing is fetched from elsewhere.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.snapshot import GradFlow
from ..findings import Finding, Severity, meaning, overall_health
from ..outcome import OUTCOME_SECTION, outcome_health, worst

# Defaults of DESIGN.md's rules, used when the caller passes no thresholds.
_DEFAULT_THRESHOLDS = {"vanishing": 1e-7, "norm_band_low": 0.1, "norm_band_high": 10.0}
_MAX_LABEL = 28  # characters of a parameter name shown under the figure
_MAX_LABELS = 120  # beyond this many parameters only every k-th is labelled
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_COLORS = {"ok": "#1a7f37", "warning": "#9a6700", "critical": "#cf222e", "info": "#0969da"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#1f2328;background:#fff;font-size:14px;line-height:1.45}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}
.badge{display:inline-block;padding:3px 12px;border-radius:12px;color:#fff;font-weight:600;
text-transform:uppercase;letter-spacing:.04em}
.sev{font-weight:600}.muted{color:#656d76}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.where,td.ev{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px;word-break:break-all}
h3{font-size:15px;margin:18px 0 2px}h3 .muted{font-weight:400;font-size:13px}
p.hint{background:#f6f8fa;border-left:3px solid #0969da;padding:6px 10px;margin:6px 0}
p.doc{background:#fff8e6;border-left:3px solid #bf8700;padding:6px 10px;margin:6px 0}
img{max-width:100%;height:auto;border:1px solid #d0d7de}
p.outcome{border-left:4px solid;padding:6px 10px;margin:8px 0;background:#f6f8fa;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;word-break:break-word}
"""


def threshold_values(thresholds: Any = None) -> dict[str, float]:
    """The report's thresholds as a plain dict, from a mapping or a `Thresholds` dataclass."""
    if thresholds is None:
        values: Mapping[str, Any] = {}
    elif dataclasses.is_dataclass(thresholds) and not isinstance(thresholds, type):
        values = dataclasses.asdict(thresholds)
    else:
        values = thresholds
    return {**_DEFAULT_THRESHOLDS, **{str(k): float(v) for k, v in values.items()}}


def grad_flow_figure(grad_flow: GradFlow, thresholds: Mapping[str, float] | None = None) -> bytes:
    """The gradient-flow figure as PNG bytes.

    Left: per-parameter mean |grad| on a log axis, with the vanishing threshold and parameters
    that never received a gradient marked in red at the axis floor. Right: the total gradient
    norm over the observed steps, with the healthy band shaded.

    Args:
        grad_flow: the accumulated per-parameter statistics of a run.
        thresholds: `vanishing`, `norm_band_low`, `norm_band_high` (DESIGN.md defaults otherwise).
    """
    from matplotlib.figure import Figure  # imported on use: writing a figure is rare

    limits = threshold_values(thresholds)
    n = len(grad_flow.names)
    # Figure.savefig renders through Agg without touching pyplot's global backend.
    fig = Figure(figsize=(min(max(9.0, 0.13 * n + 6.0), 30.0), 6.0), dpi=100,
                 layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=[max(2.0, min(n / 12.0, 6.0)), 1.6])
    _plot_parameters(fig.add_subplot(grid[0, 0]), grad_flow, limits["vanishing"])
    _plot_total_norm(fig.add_subplot(grid[0, 1]), grad_flow, limits)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_report(
    findings: Sequence[Finding],
    grad_flow: GradFlow | None = None,
    *,
    title: str = "fixlab health report",
    sections: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> str:
    """A self-contained HTML page: health badge, outcome, findings, gradient-flow figure, sections.

    Args:
        findings: what the diagnostics found; shown sorted by severity, then step.
        grad_flow: statistics for the gradient-flow figure; omitted when None or unobserved.
        title: the page heading.
        sections: extra trusted HTML fragments (e.g. a claims table), shown under their titles;
            except the entry `outcome.OUTCOME_SECTION`, the run's outcome as plain text
            (`failed: ...`), shown under the badge, which it makes no better than it implies.
        thresholds: passed to `grad_flow_figure`.

    Example:
        >>> page = render_report([Finding.of("GRAD_VANISHING", 10, "fc.weight")])
    """
    sections = dict(sections or {})
    outcome = sections.pop(OUTCOME_SECTION, None)
    health = worst(overall_health(findings), outcome_health(outcome))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><span class='badge' style='background:{_COLORS[health]}'>{health}</span> "
        f"<span class='muted'>{_summary(findings)}</span></p>",
    ]
    if outcome:
        color = _COLORS[outcome_health(outcome)]
        parts.append(f"<p class='outcome' style='border-color:{color}'>Outcome: {html.escape(outcome)}</p>")
    parts += ["<h2>Findings</h2>", _findings_table(findings)]
    if grad_flow is not None and grad_flow.observations > 0:
        png = base64.b64encode(grad_flow_figure(grad_flow, thresholds)).decode("ascii")
        parts += ["<h2>Gradient flow</h2>",
                  f"<img alt='gradient flow: per-parameter mean |grad| and total norm' "
                  f"src='data:image/png;base64,{png}'>"]
    for name, fragment in sections.items():
        parts += [f"<h2>{html.escape(name)}</h2>", fragment]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p class='muted'>Generated by fixlab, {stamp}.</p></body></html>")
    return "\n".join(parts)


def _summary(findings: Sequence[Finding]) -> str:
    if not findings:
        return "No findings: gradients, non-finite checks and normalizations looked healthy."
    counts = {s: sum(f.severity == s for f in findings) for s in _SEVERITY_ORDER}
    return ", ".join(f"{c} {s.value}" for s, c in counts.items() if c)


def _findings_table(findings: Sequence[Finding]) -> str:
    """One block per code: what it means and its documented fix once, then every place."""
    if not findings:
        return "<p>None.</p>"
    groups: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.step, f.code, f.where)):
        groups.setdefault(f.code, []).append(f)
    blocks = []
    for code, group in groups.items():
        worst = min((f.severity for f in group), key=_SEVERITY_ORDER.__getitem__)
        places = "place" if len(group) == 1 else "places"
        rows = "".join(
            f"<tr><td class='where'>{html.escape(f.where)}</td>"
            f"<td class='sev' style='color:{_COLORS[f.severity.value]}'>{f.severity.value}</td>"
            f"<td>{f.step}</td><td>{html.escape(f.message)}</td>"
            f"<td class='ev'>{_evidence(f.evidence)}</td></tr>" for f in group)
        what = meaning(code)  # "" for a code a user's rule defines
        blocks.append(
            f"<h3>{html.escape(code)} <span class='sev' style='color:{_COLORS[worst.value]}'>"
            f"{worst.value}</span> <span class='muted'>{len(group)} {places}, first at step "
            f"{group[0].step}</span></h3>"
            + (f"<p class='muted'>{html.escape(what)}.</p>" if what else "")
            + (f"<p class='hint'>Fix: {html.escape(group[0].hint)}</p>" if group[0].hint else "")
            + (f"<p class='doc'>Reproduces {html.escape(group[0].document)}</p>" if group[0].document else "")
            + "<table><tr><th>where</th><th>severity</th><th>step</th><th>seen</th><th>evidence</th></tr>"
            f"{rows}</table>")
    return "\n".join(blocks)


def _evidence(evidence: Mapping[str, Any]) -> str:
    return ", ".join(f"{html.escape(str(k))}={html.escape(_format(v))}"
                       for k, v in evidence.items())


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _short(name: str) -> str:
    """The tail of a parameter path, which names the layer; the head is usually shared."""
    return name if len(name) <= _MAX_LABEL else "…" + name[-(_MAX_LABEL - 1):]


def _plot_parameters(ax: Any, grad_flow: GradFlow, vanishing: float) -> None:
    n = len(grad_flow.names)
    x = np.arange(n)
    mean_abs = np.asarray(grad_flow.mean_abs, dtype=np.float64)
    received = np.asarray(grad_flow.received, dtype=bool)
    shown = received & np.isfinite(mean_abs) & (mean_abs > 0)
    lowest = min([vanishing, *mean_abs[shown].tolist()])
    floor = 10.0 ** (math.floor(math.log10(lowest)) - 1)
    top = max([vanishing, *mean_abs[shown].tolist()]) * 10.0
    ax.set_yscale("log")
    ax.set_ylim(floor, top)
    low = shown & (mean_abs < vanishing)
    ax.vlines(x[shown], floor, mean_abs[shown], color="#0969da", alpha=0.35, linewidth=2)
    ax.plot(x[shown & ~low], mean_abs[shown & ~low], "o", color="#0969da", markersize=4,
            label="mean |grad|")
    if low.any():
        ax.plot(x[low], mean_abs[low], "o", color="#9a6700", markersize=5,
                label="below vanishing threshold")
    if (~received).any():
        ax.plot(x[~received], np.full(int((~received).sum()), floor), "x", color="#cf222e",
                markersize=9, markeredgewidth=2.5, clip_on=False, zorder=5, label="no gradient")
    ax.axhline(vanishing, color="#9a6700", linestyle="--", linewidth=1.2,
               label=f"vanishing threshold ({vanishing:.0e})")
    step = max(1, math.ceil(n / _MAX_LABELS))
    ax.set_xticks(x[::step], [_short(name) for name in grad_flow.names[::step]],
                  rotation=90, fontsize=7 if n > 40 else 8)
    ax.set_xlim(-1, max(n, 1))
    ax.set_ylabel("mean |gradient| (averaged over observed steps)")
    ax.set_title(f"Per-parameter gradient ({n} parameters, {int((~received).sum())} "
                 "without gradient)", fontsize=11)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)


def _plot_total_norm(ax: Any, grad_flow: GradFlow, limits: Mapping[str, float]) -> None:
    steps = np.asarray(grad_flow.steps, dtype=np.float64)
    norms = np.asarray(grad_flow.total_norm, dtype=np.float64)
    ok = np.isfinite(norms) & (norms > 0)
    low, high = limits["norm_band_low"], limits["norm_band_high"]
    ax.set_yscale("log")
    ax.axhspan(low, high, color="#1a7f37", alpha=0.12, label=f"healthy band ({low:g}–{high:g})")
    ax.plot(steps[ok], norms[ok], "-", color="#0969da", linewidth=1.2, marker="." if
            ok.sum() < 60 else None, label="total norm")
    values = norms[ok].tolist() + [low, high]
    ax.set_ylim(min(values) / 3.0, max(values) * 3.0)
    bad = ~np.isfinite(norms)
    if bad.any():
        ax.plot(steps[bad], np.full(int(bad.sum()), max(values) * 3.0), "v", color="#cf222e",
                clip_on=False, label="non-finite")
    ax.set_xlabel("step")
    ax.set_ylabel("total gradient L2 norm")
    ax.set_title("Total gradient norm", fontsize=11, pad=12)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)

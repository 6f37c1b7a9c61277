"""The numbers a research note states, measured by a run and recorded beside the run.

Each project keeps a ``claims.yaml``: one entry per figure its document states, the entry
point ("variant") that measures it, the run metric that measures it, and the range the
figure implies. After a run, :func:`evaluate` compares the run's metrics with the claims of
its variant, :func:`log_claims` records the verdicts in MLflow, and :func:`claims_table`
(``fixlab claims``) reads them back across all runs of an experiment. A claim that does not
reproduce is reported as such: the goal is an honest measurement, not agreement.

Format of ``claims.yaml``::

    document: 001_bac714bd05ae718b.txt      # the research note, a file in shared/seeds
    claims:
      - id: accuracy_before                # unique in the file; [a-z0-9_]+
        variant: repr_broken               # the entry point whose runs measure it
        quote: "Accuracy: ~2% (stagnating)"   # the document's words
        figure: "~2%"                      # the documented figure, as written
        metric: test/acc                   # the run metric that measures it
        expect: {max: 0.05}                # min and/or max, inclusive, finite numbers

No other keys are allowed (a misspelt ``expected`` is an error, not a silently missing
range). Quote ``figure`` when it looks like a number, so YAML keeps it as written.

What a run records (see :func:`log_claims`): metric ``claims/<id>/measured``, tag
``fixlab.claim.<id>`` = verdict, and artifact ``fixlab/claims.json`` with every field.

Example:
    >>> claims = load_claims("projects/repr_gradflow/claims.yaml")
    >>> results = evaluate(claims.for_variant("repr_fixed"), {"test/acc": 0.31})
    >>> log_claims(results)                       # inside the run
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from .paging import all_pages

Verdict = Literal["reproduced", "not reproduced", "not measured"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "not measured")

ARTIFACT_PATH = "fixlab/claims.json"
TAG_PREFIX = "fixlab.claim."
VARIANT_TAG = "fixlab.variant"

_ID = re.compile(r"[a-z0-9_]+")
_VARIANT = re.compile(r"[A-Za-z0-9_.-]+")
_CLAIM_KEYS = ("id", "variant", "quote", "figure", "metric", "expect")
_EXPECT_KEYS = ("min", "max")


@dataclass(frozen=True)
class Claim:
    """One documented figure: where it is stated and the range a run must land in.

    ``low``/``high`` are the inclusive bounds from ``expect: {min, max}``; either may be
    None (an open side) but not both.
    """

    id: str
    variant: str
    quote: str
    figure: str
    metric: str
    low: float | None
    high: float | None
    document: str = ""

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError(f"claim {self.id!r}: low and high are both None; allowed: at least "
                             "one bound")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"claim {self.id!r}: low={self.low} > high={self.high}; "
                             "allowed: low <= high")

    def holds(self, value: float) -> bool:
        """Whether `value` lies in the expected range (bounds inclusive)."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    @property
    def expected(self) -> str:
        """The range as a reader would write it: ``>= 0.15``, ``<= 0.05``, ``0.1 to 0.4``."""
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)} to {_num(self.high)}"
        if self.low is not None:
            return f">= {_num(self.low)}"
        return f"<= {_num(self.high)}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "variant": self.variant, "document": self.document,
                "quote": self.quote, "figure": self.figure, "metric": self.metric,
                "expect": {"min": self.low, "max": self.high}, "expected": self.expected}


@dataclass(frozen=True)
class ClaimsFile:
    """A parsed ``claims.yaml``: the document it cites and its claims, in file order."""

    document: str
    claims: tuple[Claim, ...]
    path: Path | None = None

    @property
    def variants(self) -> list[str]:
        """The variants that measure at least one claim, in first-seen order."""
        return list(dict.fromkeys(c.variant for c in self.claims))

    def for_variant(self, name: str) -> tuple[Claim, ...]:
        """The claims measured by entry point `name` (empty when it measures none)."""
        return tuple(c for c in self.claims if c.variant == name)


@dataclass(frozen=True)
class ClaimResult:
    """A claim with the value a run measured and the verdict."""

    claim: Claim
    measured: float | None
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {**self.claim.to_dict(), "measured": self.measured, "verdict": self.verdict}


# --------------------------------------------------------------------------- loading


def load_claims(path: str | Path) -> ClaimsFile:
    """Read and validate a ``claims.yaml`` (format in the module docstring).

    Raises:
        ValueError: one line naming the file, the claim and field at fault, and what is
            allowed: missing or unreadable file, invalid YAML, a missing or unknown key, a
            duplicate id, a non-numeric or non-finite bound, min > max, or no bound at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: claims file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read claims file ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ValueError(f"{path}: not valid YAML{line} ({problem})") from None

    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with keys 'document' and 'claims', "
                         f"got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - {"document", "claims"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; "
                         "allowed: 'document', 'claims'")
    document = _text(data, "document", f"{path}")
    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list):
        raise ValueError(f"{path}: 'claims' must be a list of claim mappings, "
                         f"got {type(raw_claims).__name__}")

    claims: list[Claim] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_claims):
        claim = _parse_claim(raw, index, document, path)
        if claim.id in seen:
            raise ValueError(f"{path}: claim {claim.id!r}: duplicate id; each id must be unique")
        seen.add(claim.id)
        claims.append(claim)
    return ClaimsFile(document, tuple(claims), path)


def _parse_claim(raw: Any, index: int, document: str, path: Path) -> Claim:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: claims[{index}]: expected a mapping with keys "
                         f"{list(_CLAIM_KEYS)}, got {type(raw).__name__}")
    cid = raw.get("id")
    label = f"{path}: claim {cid!r}" if isinstance(cid, str) else f"{path}: claims[{index}]"
    unknown = sorted(set(map(str, raw)) - set(_CLAIM_KEYS))
    if unknown:
        raise ValueError(f"{label}: unknown key(s) {unknown}; allowed: {list(_CLAIM_KEYS)}")
    cid = _text(raw, "id", label)
    if not _ID.fullmatch(cid):
        raise ValueError(f"{label}: field 'id'={cid!r} is invalid; allowed: [a-z0-9_]+")
    variant = _text(raw, "variant", label)
    if not _VARIANT.fullmatch(variant):
        raise ValueError(f"{label}: field 'variant'={variant!r} is invalid; "
                         "allowed: an entry point name, [A-Za-z0-9_.-]+")
    low, high = _parse_expect(raw.get("expect"), label)
    return Claim(id=cid, variant=variant, quote=_text(raw, "quote", label),
                 figure=_text(raw, "figure", label, numbers_ok=True),
                 metric=_text(raw, "metric", label), low=low, high=high, document=document)


def _parse_expect(expect: Any, label: str) -> tuple[float | None, float | None]:
    allowed = "a mapping with 'min' and/or 'max', e.g. {min: 0.15}"
    if expect is None:
        raise ValueError(f"{label}: missing field 'expect'; allowed: {allowed}")
    if not isinstance(expect, dict):
        raise ValueError(f"{label}: field 'expect'={expect!r} is not {allowed}")
    unknown = sorted(set(map(str, expect)) - set(_EXPECT_KEYS))
    if unknown:
        raise ValueError(f"{label}: field 'expect' has unknown key(s) {unknown}; "
                         "allowed: 'min', 'max'")
    bounds: dict[str, float | None] = {}
    for key in _EXPECT_KEYS:
        value = expect.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ValueError(f"{label}: field 'expect.{key}'={value!r} is not a number; "
                             "allowed: a finite number")
        bounds[key] = None if value is None else float(value)
    low, high = bounds["min"], bounds["max"]
    if low is None and high is None:
        raise ValueError(f"{label}: field 'expect' has no bound; allowed: {allowed}")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{label}: field 'expect' has min={_num(low)} > max={_num(high)}; "
                         "allowed: min <= max")
    return low, high


def _text(mapping: Mapping[str, Any], key: str, label: str, numbers_ok: bool = False) -> str:
    """A required non-empty string field (numbers are kept as text where `numbers_ok`)."""
    if key not in mapping or mapping[key] is None:
        raise ValueError(f"{label}: missing field {key!r}; allowed: a non-empty string")
    value = mapping[key]
    if numbers_ok and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{label}: field {key!r}={value!r} is invalid; "
                         "allowed: a non-empty string")
    return value


# --------------------------------------------------------------------------- evaluating


def evaluate(claims: Sequence[Claim], metrics: Mapping[str, float]) -> list[ClaimResult]:
    """Compare measured metrics with claims; pure, and filters nothing.

    A claim is ``not measured`` when its metric is absent from `metrics` or is not a finite
    number; otherwise ``reproduced`` when the value lies in the expected range, else
    ``not reproduced``. Pass the claims of one variant (:meth:`ClaimsFile.for_variant`).
    """
    results = []
    for claim in claims:
        measured = _finite(metrics.get(claim.metric))
        if measured is None:
            verdict: Verdict = "not measured"
        else:
            verdict = "reproduced" if claim.holds(measured) else "not reproduced"
        results.append(ClaimResult(claim, measured, verdict))
    return results


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------- recording


def log_claims(results: Sequence[ClaimResult], run_id: str | None = None) -> None:
    """Record claim results on a run: metrics, verdict tags and ``fixlab/claims.json``.

    Only results whose claim's variant matches the run's ``fixlab.variant`` tag are logged
    (all of them when the run has no such tag); the others are skipped with a warning, so a
    run never carries verdicts it did not measure.

    Args:
        results: from :func:`evaluate`.
        run_id: the run to record on; defaults to the active run.

    Raises:
        ValueError: when no run_id is given and no run is active.
    """
    import mlflow
    from mlflow.entities import Metric, RunTag
    from mlflow.utils.time import get_current_time_millis

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError("log_claims: run_id=None and no MLflow run is active; "
                             "pass run_id or call it inside mlflow.start_run()")
        run_id = active.info.run_id
    client = mlflow.MlflowClient()
    run_variant = client.get_run(run_id).data.tags.get(VARIANT_TAG)
    kept = [r for r in results if run_variant is None or r.claim.variant == run_variant]
    if len(kept) < len(results):
        skipped = [r.claim.id for r in results if r.claim.variant != run_variant]
        warnings.warn(f"log_claims: run {run_id} has {VARIANT_TAG}={run_variant!r}; "
                      f"skipped claims of other variants: {skipped}", stacklevel=2)
    if not kept:
        return
    now = get_current_time_millis()
    metrics = [Metric(f"claims/{r.claim.id}/measured", r.measured, now, 0)
               for r in kept if r.measured is not None]
    tags = [RunTag(f"{TAG_PREFIX}{r.claim.id}", r.verdict) for r in kept]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    payload = {"claims": [r.to_dict() for r in kept]}
    client.log_text(run_id, json.dumps(payload, indent=2), ARTIFACT_PATH)


_VERDICT_COLORS = {"reproduced": "#1a7f37", "not reproduced": "#cf222e", "not measured": "#6e7781"}


def claims_html(results: Sequence[ClaimResult]) -> str:
    """An HTML ``<table>`` fragment of the verdicts, for the run's health report.

    Every value is escaped; colours are inline so the fragment needs no stylesheet.
    """
    head = ("claim", "document", "quote", "figure", "metric", "expected", "measured", "verdict")
    rows = []
    for r in results:
        c = r.claim
        color = _VERDICT_COLORS[r.verdict]
        cells = [c.id, c.document, c.quote, c.figure, c.metric, c.expected, _num(r.measured)]
        tds = "".join(f"<td>{html.escape(v)}</td>" for v in cells)
        tds += (f'<td class="verdict" style="color:{color};font-weight:bold">'
                f"{html.escape(r.verdict)}</td>")
        rows.append(f'<tr class="claim-{html.escape(r.verdict.replace(" ", "-"))}">{tds}</tr>')
    ths = "".join(f"<th>{h}</th>" for h in head)
    return (f'<table class="fixlab-claims">\n<thead><tr>{ths}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table>")


# --------------------------------------------------------------------------- reading back

TABLE_COLUMNS = ("run_name", "run_id", "variant", "claim", "figure", "expected", "measured",
                 "verdict", "metric", "document")


def claims_table(experiment_name: str, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """One row per (run, claim) across the experiment's active runs, oldest run first.

    Row keys: ``run_name``, ``run_id``, ``variant`` (the run's ``fixlab.variant`` tag, else
    the claim's), ``claim``, ``figure`` (as the document writes it), ``expected``,
    ``measured`` (float or None), ``verdict``, ``metric``, ``document``. The details come
    from each run's ``fixlab/claims.json``; a run whose artifact is gone still gets rows
    from its verdict tags and metrics.

    Raises:
        ValueError: one line: the local store `tracking_uri` names (default: the current one)
            does not exist (it is not created), or the experiment does not exist (the message
            lists those that do).
    """
    import mlflow

    from .store import checked_store

    tracking_uri = checked_store(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        names = sorted(e.name for e in all_pages(client.search_experiments))
        raise ValueError(f"experiment {experiment_name!r} does not exist; existing experiments: "
                         f"{names or 'none'} (store {tracking_uri})")
    runs = _all_runs(client, experiment.experiment_id)
    rows: list[dict[str, Any]] = []
    for run in sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
        rows.extend(run_claim_rows(run, tracking_uri))
    return rows


def run_claim_rows(run: Any, tracking_uri: str | None) -> list[dict[str, Any]]:
    """The claim rows (keys as in `claims_table`) of one MLflow run; [] when it logged none."""
    verdict_tags = {k[len(TAG_PREFIX):]: v for k, v in run.data.tags.items()
                    if k.startswith(TAG_PREFIX)}
    if not verdict_tags:
        return []
    records = _read_records(run.info.run_id, tracking_uri) or [
        {"id": cid, "verdict": verdict,
         "measured": run.data.metrics.get(f"claims/{cid}/measured")}
        for cid, verdict in sorted(verdict_tags.items())]
    return [{
        "run_name": run.info.run_name or "",
        "run_id": run.info.run_id,
        "variant": run.data.tags.get(VARIANT_TAG) or rec.get("variant", ""),
        "claim": rec.get("id", ""),
        "figure": rec.get("figure", ""),
        "expected": rec.get("expected", ""),
        "measured": _finite(rec.get("measured")),
        "verdict": rec.get("verdict", ""),
        "metric": rec.get("metric", ""),
        "document": rec.get("document", ""),
    } for rec in records]


def _read_records(run_id: str, tracking_uri: str | None) -> list[dict[str, Any]] | None:
    """The claim records of a run's ``fixlab/claims.json``, or None when it is unreadable."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=tmp, tracking_uri=tracking_uri)
            payload = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - a missing or damaged artifact falls back to tags
            return None
    claims = payload.get("claims") if isinstance(payload, dict) else None
    return [c for c in claims if isinstance(c, dict)] if isinstance(claims, list) else None


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _num(value: float | None) -> str:
    """A short, exact-enough rendering of a number; empty for None."""
    return "" if value is None else f"{value:.4g}"

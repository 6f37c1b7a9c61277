"""The comparison runs of document 002: a parent run holding the table, one nested child run per
configuration and seed.

- `ae_teacher_forcing_per_batch`: the note's bug (one teacher-forcing coin flip per batch) beside
  the fixed schedule (one per time step), the difference in test token cosine measured.
- `ae_decomposition`: MSE against the hybrid cosine loss, without and with attention, so the note's
  "+0.20 from the loss, +0.15 from attention" is measured rather than assumed.
"""

from __future__ import annotations

from typing import Any, Mapping

from projects.common.child_run import child_run
from projects.common.comparison import Cell, Table, finish_comparison, html_table, markdown_table, summarize
from projects.common.entry import RunSummary
from projects.common.run import ProjectRun, open_run
from projects.poetry_ae.config import SPEC, PoetryRunConfig
from projects.poetry_ae.data import load_data
from projects.poetry_ae.experiment import fit_model, model_config, outcome_metrics
from projects.poetry_ae.figures import bars_figure, curves_figure

__all__ = ["run_comparison", "TEACHER_FORCING", "DECOMPOSITION"]

TEACHER_FORCING: dict[str, dict[str, Any]] = {"per_step": {"teacher_forcing": "per_step"},
                                              "per_batch": {"teacher_forcing": "per_batch"}}
DECOMPOSITION: dict[str, dict[str, Any]] = {
    "mse": {"loss": "mse", "attention": False}, "hybrid": {"loss": "hybrid", "attention": False},
    "mse_attention": {"loss": "mse", "attention": True}, "hybrid_attention": {"loss": "hybrid", "attention": True}}
#: The note's expected cosines: its baseline (MSE, sequential decoder) and the gains it assumed.
DOCUMENT_DECOMPOSITION = {"mse": 0.6285, "hybrid": 0.8285, "mse_attention": 0.7785, "hybrid_attention": 0.9785}
KEY = "test/token_cosine"


def run_comparison(config: PoetryRunConfig) -> RunSummary:
    """The parent run of `config.variant` with its children."""
    with open_run(SPEC, config) as parent:
        parent.log_params(config.to_params())
        table = (_teacher_forcing(parent, config) if config.variant == "teacher_forcing_per_batch"
                 else _decomposition(parent, config))
        return finish_comparison(parent, table, config.variant)


def _cells(parent: ProjectRun, config: PoetryRunConfig, models: Mapping[str, Mapping[str, Any]]) -> dict[str, Cell]:
    """One child per configuration and seed; the data are loaded once per seed."""
    cells = {name: Cell() for name in models}
    for seed in range(config.seed, config.seed + config.n_seeds):
        data = load_data(config, seed=seed)
        for name, changes in models.items():
            child_config = config.child(seed=seed)
            with child_run(parent, child_config, child=f"{name}/seed{seed}") as child:
                child.log_params({**child_config.to_params(), "data.source": data.source,
                                  **{f"model.{k}": v for k, v in {**child_config.model_fields(), **changes}.items()}})
                fitted = fit_model(child, child_config, data, model_config(child_config, data, **changes))
                metrics = outcome_metrics(fitted, data, child_config)
                child.log_metrics({k: v for k, v in metrics.items() if not k.startswith(("test/", "val/"))})
            cells[name].add(metrics, child.run_id, fitted.history.series("val/token_cosine"))
            print(f"  {config.entry_point} {name} seed {seed}: {KEY} {metrics[KEY]:.4f} ({cells[name].health[-1]})",
                  flush=True)
    return cells


def _rows(cells: Mapping[str, Cell], document: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    rows = []
    for name, cell in cells.items():
        mean, std = cell.summary(KEY)
        seq, _ = cell.summary("test/seq_cosine")
        rows.append({"model": name, "token cosine": mean, "std": std, "sequence cosine": seq,
                     "document": (document or {}).get(name), "n": len(cell.values.get(KEY, [])),
                     "healthy": f"{cell.health.count('ok')}/{len(cell.health)}"})
    return rows


COLUMNS = ["model", "token cosine", "std", "sequence cosine", "document", "n", "healthy"]


def _teacher_forcing(parent: ProjectRun, config: PoetryRunConfig) -> Table:
    cells = _cells(parent, config, TEACHER_FORCING)
    diffs = [a - b for a, b in zip(cells["per_step"].values[KEY], cells["per_batch"].values[KEY])]
    gap, gap_std = summarize(diffs)
    metrics = {"tf/per_step_token_cosine": cells["per_step"].summary(KEY)[0],
               "tf/per_batch_token_cosine": cells["per_batch"].summary(KEY)[0],
               "tf/per_step_minus_per_batch": gap, "tf/per_step_minus_per_batch_std": gap_std}
    rows = _rows(cells)
    headline = [f"token cosine per time step {metrics['tf/per_step_token_cosine']:.4f}, per batch (the bug) "
                f"{metrics['tf/per_batch_token_cosine']:.4f}: difference {gap:+.4f} +- {gap_std:.4f} over "
                f"{len(diffs)} seeds"]
    figure = curves_figure({n: c.curves for n, c in cells.items()}, "val token cosine",
                           "teacher forcing per time step against per batch")
    return Table("Teacher forcing per time step against per batch (document 002's bug)", metrics,
                 markdown_table(rows, COLUMNS), html_table(rows, COLUMNS), figure, headline, list(cells.values()))


def _decomposition(parent: ProjectRun, config: PoetryRunConfig) -> Table:
    cells = _cells(parent, config, DECOMPOSITION)
    mean = {n: c.summary(KEY)[0] for n, c in cells.items()}
    metrics = {f"decomp/{n}/token_cosine": v for n, v in mean.items()}
    metrics["decomp/loss_gain"] = ((mean["hybrid"] - mean["mse"]) + (mean["hybrid_attention"] - mean["mse_attention"])) / 2
    metrics["decomp/attention_gain"] = ((mean["mse_attention"] - mean["mse"])
                                        + (mean["hybrid_attention"] - mean["hybrid"])) / 2
    metrics["decomp/interaction"] = (mean["hybrid_attention"] - mean["hybrid"]) - (mean["mse_attention"] - mean["mse"])
    rows = _rows(cells, DOCUMENT_DECOMPOSITION)
    headline = [f"gain from the cosine loss {metrics['decomp/loss_gain']:+.4f} (document +0.20), from attention "
                f"{metrics['decomp/attention_gain']:+.4f} (document +0.15), interaction "
                f"{metrics['decomp/interaction']:+.4f}"]
    figure = bars_figure({n: c.values[KEY] for n, c in cells.items()}, "test token cosine",
                         "loss x attention (document: expected values)", DOCUMENT_DECOMPOSITION)
    return Table("Loss and attention decomposition (document 002)", metrics, markdown_table(rows, COLUMNS),
                 html_table(rows, COLUMNS), figure, headline, list(cells.values()))

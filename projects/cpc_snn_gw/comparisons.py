"""The comparison runs of document 000: a parent run holding the table, one nested child run per
configuration and seed, all on the same windows (each child a full fixlab run: the JAX monitor,
findings in its tags, test metrics beside the matched filter's).

- `cpc_ablation`: which fix mattered. `cpc_fixed`, each of the note's four fixes reverted alone,
  and `cpc_original`.
- `cpc_snn_progressive`: the note's phase 2, done one part at a time from `cpc_fixed`: the spike
  bridge, then the LIF SNN classifier, then InfoNCE as an auxiliary loss; where (if anywhere) the
  neuromorphic parts cost accuracy.

The seed of a child sets its weights and shuffle; the data are the parent's (its `seed`), so the
spread over seeds is the training's, and every configuration is tested on the same windows.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import mlflow

from jax_modules.cpc_snn_gw.variants import Variant, ablation_variants, progressive_variants
from projects.common.child_run import child_run
from projects.common.comparison import Cell, Table, finish_comparison, html_table, markdown_table
from projects.common.entry import RunSummary
from projects.common.run import open_run
from projects.cpc_snn_gw.config import AUX_INFONCE_WEIGHT, SPEC, VARIANTS, CpcGwConfig
from projects.cpc_snn_gw.data import RunData
from projects.cpc_snn_gw.experiment import timed_run_data, train_in
from projects.cpc_snn_gw.figures import comparison_figure
from projects.cpc_snn_gw.reference import matched_filter_scores

__all__ = ["run_comparison", "revert_costs", "ABLATION_CHANGES", "PROGRESSIVE_CHANGES", "KEYS"]

ABLATION_CHANGES = {
    "fixed": "Fixed CPC: CPC(256), no L2, single-task BCE, lr 5e-5, direct classifier",
    "latent_64": "fix 1 reverted: latent 256 -> 64",
    "l2_normalize": "fix 2 reverted: the latents L2-normalized again",
    "lr_1e-4": "fix 3 reverted: lr 5e-5 -> 1e-4",
    "multi_task": "fix 4 reverted: InfoNCE + BCE, weight 1",
    "original": "Original CPC-SNN: all four reverted, and the spike bridge + LIF SNN",
}
PROGRESSIVE_CHANGES = {
    "cpc": "Fixed CPC: direct classifier on the GRU context",
    "spike_bridge": "+ spike bridge: the direct classifier reads spikes",
    "snn": "+ LIF SNN classifier on the spikes",
    "snn_infonce": f"+ InfoNCE as an auxiliary loss (weight {AUX_INFONCE_WEIGHT:g})",
}
#: What each child reports, as (metric key, table column).
KEYS = (("test/acc", "test acc"), ("test/auc", "test AUC"), ("test/tpr_at_far_1e-2", "TPR at FAR 1e-2"),
        ("test/tpr_at_far_1e-3", "TPR at FAR 1e-3"), ("vs_mf/distance_ratio_far_1e-2", "distance vs MF, FAR 1e-2"),
        ("tasks/spike_rate", "spike rate"))
#: The matched filter's numbers on the shared test windows, the same in every child.
REFERENCE_KEYS = ("mf/tpr_at_far_1e-2", "mf/tpr_at_far_1e-3", "mf/snr50_far_1e-2")


def _configurations(config: CpcGwConfig) -> tuple[dict[str, Variant], dict[str, str], str]:
    """The children's variants, what each changes, and the table's title."""
    if config.variant == "cpc_ablation":
        return ablation_variants(), ABLATION_CHANGES, "Which fix mattered: each fix reverted alone (document 000)"
    return (progressive_variants(AUX_INFONCE_WEIGHT), PROGRESSIVE_CHANGES,
            "The neuromorphic parts added one at a time to Fixed CPC (document 000, phase 2)")


def run_comparison(config: CpcGwConfig, progress: bool = True) -> RunSummary:
    """The parent run of `config.variant` ("cpc_ablation" or "cpc_snn_progressive") with its children."""
    data, data_seconds = timed_run_data(config, progress)
    reference = matched_filter_scores(config, data.test)
    with open_run(SPEC, config) as parent:
        parent.log_params({**config.to_params(), "document_row": VARIANTS[config.variant],
                           "data.source": data.source, "data.n_train": len(data.train),
                           "data.n_test": len(data.test)})
        parent.log_metrics({"perf/data_seconds": data_seconds})
        variants, changes, title = _configurations(config)
        cells = {}
        for name, variant in variants.items():
            cells[name] = _children(parent, config, name, variant, changes[name], data, reference, progress)
        return finish_comparison(parent, _table(config, title, changes, cells), config.variant)


def _children(parent, config: CpcGwConfig, name: str, variant: Variant, change: str, data: RunData,
              reference, progress: bool) -> Cell:
    """One child per seed of one configuration."""
    cell = Cell()
    client = mlflow.MlflowClient()
    for seed in range(config.seed, config.seed + config.n_seeds):
        child_config = replace(config, seed=seed)
        with child_run(parent, child_config, child=f"{name}/seed{seed}") as child:
            child.log_params({"configuration": name, "data.seed": config.seed})
            trained = train_in(child, child_config, variant, data, reference, label=f"{name} seed {seed}",
                               description=change, progress=progress)
        logged = client.get_run(child.run_id).data.metrics  # the last value of each history
        measured = {key: _measured(trained.metrics.get(key, logged.get(key))) for key, _ in KEYS}
        measured.update({key: _measured(trained.metrics.get(key)) for key in REFERENCE_KEYS})
        cell.add(measured, child.run_id, [m.value for m in client.get_metric_history(child.run_id, "val/auc")])
        print(f"  {config.variant} {name} seed {seed}: test/acc {measured['test/acc']:.4f}  TPR@1e-2 "
              f"{_number(measured['test/tpr_at_far_1e-2'])} ({cell.health[-1]})", flush=True)
    return cell


def _measured(value: float | None) -> float | None:
    """None for what was not measured: absent, or NaN (a false-alarm rate the test noise cannot resolve)."""
    return value if value is not None and math.isfinite(value) else None


def _number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _mean_std(cell: Cell, key: str) -> str:
    mean, std = cell.summary(key)
    return "n/a" if not math.isfinite(mean) else f"{mean:.3f} ± {std:.3f}"


def revert_costs(cells: dict[str, Cell], key: str = "test/auc") -> dict[str, float]:
    """What reverting each fix costs: the fixed configuration's mean `key` minus the reverted one's
    (`cpc_ablation/revert_cost/<name>/auc`), and that difference over its standard error
    (`.../auc_z`, Welch: sqrt(s1^2/n1 + s2^2/n2); NaN with fewer than two seeds on a side), the
    measure the claims judge "this fix mattered" by."""
    fixed = cells["fixed"].values.get(key, [])
    costs = {}
    for name, cell in cells.items():
        if name == "fixed":
            continue
        reverted = cell.values.get(key, [])
        label = f"cpc_ablation/revert_cost/{name}/{key.split('/')[-1]}"
        if not fixed or not reverted:
            continue
        costs[label] = statistics.fmean(fixed) - statistics.fmean(reverted)
        if len(fixed) > 1 and len(reverted) > 1:
            error = math.sqrt(statistics.variance(fixed) / len(fixed) + statistics.variance(reverted) / len(reverted))
            costs[f"{label}_z"] = costs[label] / error if error > 0 else math.copysign(math.inf, costs[label])
    return costs


def _table(config: CpcGwConfig, title: str, changes: dict[str, str], cells: dict[str, Cell]) -> Table:
    """Mean ± standard deviation over seeds per configuration, the matched filter's row, the figure."""
    columns = ["configuration", "what changes", "seeds", *(label for _, label in KEYS), "children's health"]
    rows, metrics = [], {}
    for name, cell in cells.items():
        row = {"configuration": name, "what changes": changes[name], "seeds": len(cell.health),
               "children's health": ", ".join(sorted(set(cell.health))) + (
                   f" ({', '.join(sorted(cell.codes))})" if cell.codes else "")}
        for key, label in KEYS:
            row[label] = _mean_std(cell, key)
            mean, std = cell.summary(key)
            metrics[f"{config.variant}/{name}/{key.replace('/', '_')}_mean"] = mean
            metrics[f"{config.variant}/{name}/{key.replace('/', '_')}_std"] = std
        rows.append(row)
    if config.variant == "cpc_ablation":
        metrics.update(revert_costs(cells))
    first = next(iter(cells.values()))
    reference = {key: first.summary(key)[0] for key in REFERENCE_KEYS}
    metrics.update({k: v for k, v in reference.items() if math.isfinite(v)})
    if math.isfinite(reference["mf/tpr_at_far_1e-2"]):
        rows.append({"configuration": "matched filter", "what changes": "the optimal detector, same test windows",
                     "TPR at FAR 1e-2": _number(reference["mf/tpr_at_far_1e-2"]),
                     "TPR at FAR 1e-3": _number(reference["mf/tpr_at_far_1e-3"]), "distance vs MF, FAR 1e-2": "1"})
    figure = comparison_figure(list(cells), {name: cell.values for name, cell in cells.items()},
                               [("test/acc", "test accuracy"), ("test/tpr_at_far_1e-2", "TPR at FAR 1e-2"),
                                ("vs_mf/distance_ratio_far_1e-2", "sensitive distance / matched filter's")],
                               f"{config.variant}: {config.n_seeds} seeds, {config.n_epochs} epochs each")
    headline = [f"{name}: test/acc {_mean_std(cell, 'test/acc')}, TPR@1e-2 {_mean_std(cell, 'test/tpr_at_far_1e-2')}"
                for name, cell in cells.items()]
    return Table(title, metrics, markdown_table(rows, columns) + "\n", html_table(rows, columns), figure,
                 headline, list(cells.values()))

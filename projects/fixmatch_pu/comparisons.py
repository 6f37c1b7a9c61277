"""`supervised_baseline`: the document's learnability test beside its peers on the same data.

A parent run with one nested child per objective (`PEERS`), the same network and data: PN on the
labels alone (labeled particles against everything unlabeled; the document's supervised baseline,
which should reach AUC > 0.6), Topaz's GE-binomial, nnPU without FixMatch, and FixMatch + nnPU with
the debugged settings. The table says whether the semi-supervised machinery earns its keep here.
"""

from __future__ import annotations

from projects.common.child_run import child_run
from projects.common.comparison import Cell, Table, finish_comparison, html_table, markdown_table
from projects.common.entry import RunSummary
from projects.common.run import ProjectRun, open_run
from projects.fixmatch_pu.config import PEERS, SPEC, FixMatchPURunConfig
from projects.fixmatch_pu.data import load_data
from projects.fixmatch_pu.figures import auc_figure
from projects.fixmatch_pu.fitting import fit_model, model_config, outcome_metrics, run_level

__all__ = ["run_peers"]

COLUMNS = ["objective", "fixmatch", "test/auc", "test/ap", "best val/auc", "final prediction std", "healthy"]


def run_peers(config: FixMatchPURunConfig) -> RunSummary:
    """The parent run of `supervised_baseline` with one child per peer."""
    with open_run(SPEC, config) as parent:
        parent.log_params(config.to_params())
        return finish_comparison(parent, _peers(parent, config), "peers")


def _peers(parent: ProjectRun, config: FixMatchPURunConfig) -> Table:
    data = load_data(config)
    rows, metrics, curves, cells = [], {}, {}, []
    for name, changes in PEERS.items():
        cell = Cell()
        with child_run(parent, config, child=name) as child:
            model = model_config(config, data, **changes)
            child.log_params({**config.to_params(), "data.source": data.source,
                              **{f"model.{k}": v for k, v in model.to_dict().items()}})
            fitted = fit_model(child, config, data, model)
            measured = outcome_metrics(child, fitted, data)
            child.log_metrics(run_level(measured))
        cell.add(measured, child.run_id, fitted.history.series("val/auc"))
        cells.append(cell)
        curves[name] = cell.curves[0]
        rows.append({"objective": name, "fixmatch": model.fixmatch, "test/auc": measured["test/auc"],
                     "test/ap": measured["test/ap"], "best val/auc": measured["val/auc"],
                     "final prediction std": measured["final/val_pred_std"], "healthy": cell.health[0]})
        metrics.update({f"peers/{name}/test_auc": measured["test/auc"], f"peers/{name}/test_ap": measured["test/ap"]})
        print(f"  supervised_baseline {name}: test/auc {measured['test/auc']:.4f} ({cell.health[0]})", flush=True)
    best_other = max(v for k, v in metrics.items() if k.endswith("/test_auc") and "fixmatch" not in k)
    metrics["peers/fixmatch_minus_best_other"] = metrics["peers/fixmatch_nnpu/test_auc"] - best_other
    headline = [f"{r['objective']}: test/auc {r['test/auc']:.4f}, test/ap {r['test/ap']:.4f} ({r['healthy']})"
                for r in rows]
    return Table("Supervised baseline and peers on the same data (document 004)", metrics,
                 markdown_table(rows, COLUMNS) + "\n", html_table(rows, COLUMNS),
                 auc_figure(curves, title="supervised_baseline: validation ROC AUC per objective"), headline, cells)

"""The comparison runs of document 003: a parent run holding the table, one nested child run per
configuration and seed (each a full fixlab run: callbacks, findings in its tags, metrics).

- `cvkan_pooling`: domain x head pooling (mean, attention, magnitude-weighted) over seeds, the
  note's table with its deltas beside the measured ones, and its open question whether the
  parameter-free magnitude-weighted pooling matches attention.
- `cvkan_hierarchical`: the flat stack against the hierarchical variants on the signal/noise
  task (length 16): parameters, validation accuracy at epoch 3, epochs to reach 99 %.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from projects.common.child_run import child_run
from projects.common.comparison import Cell, Table, finish_comparison, html_table, markdown_table, median_epochs, summarize
from projects.common.entry import RunSummary
from projects.common.epoch_history import epochs_to
from projects.common.run import ProjectRun, open_run
from projects.cvkan.config import HIERARCHIES, POOLINGS, SPEC, CVKANRunConfig, spec_for
from projects.cvkan.data import DomainData, audio_waveforms, domain_data, signal_noise_data
from projects.cvkan.experiment import outcome_metrics
from projects.cvkan.figures import DOCUMENT_POOLING, convergence_figure, pooling_table_figure
from projects.cvkan.fitting import Fitted, fit_model, model_config

__all__ = ["run_comparison", "HIERARCHY_MODELS", "DOCUMENT_HIERARCHY"]

#: The note's hierarchy table: parameters, validation accuracy at epoch 3, epochs to > 99 %.
DOCUMENT_HIERARCHY = {"flat": (174e3, 0.997, 3), "shared": (58e3, 0.930, None), "per_level": (580e3, 1.0, 1),
                      "magnitude": (580e3, 1.0, 1), "top_down": (580e3, 0.993, None)}
#: Each stack of the table as `CVKANConfig` changes; per-level blocks with the note's capacity of 10.
HIERARCHY_MODELS: dict[str, dict[str, Any]] = {
    "flat": {"stack": "flat"},
    "shared": {"stack": "hierarchical", "share_weights": True},
    "per_level": {"stack": "hierarchical", "share_weights": False, "level_capacity": 10},
    "magnitude": {"stack": "hierarchical", "share_weights": False, "level_capacity": 10, "aggregation": "magnitude"},
    "top_down": {"stack": "hierarchical", "share_weights": False, "level_capacity": 10, "top_down": True},
}
TARGET = 0.99


def run_comparison(config: CVKANRunConfig) -> RunSummary:
    """The parent run of `config.variant` ("pooling" or "hierarchical") with its children."""
    with open_run(SPEC, config) as parent:
        parent.log_params(config.to_params())
        table = _pooling(parent, config) if config.variant == "pooling" else _hierarchy(parent, config)
        return finish_comparison(parent, table, config.variant)


def _children(parent: ProjectRun, config: CVKANRunConfig, label: str, data_for: Callable[[int], DomainData],
              model_changes: Mapping[str, Any], domain: str | None, cell: Cell) -> None:
    """One child per seed of one configuration, into `cell`; `domain` None: not a domain's data."""
    for seed in range(config.seed, config.seed + config.n_seeds):
        child_config = config.child(seed=seed, **({"domain": domain} if domain else {}))
        data = data_for(seed)
        spec = spec_for(domain) if domain else SPEC
        with child_run(parent, child_config, child=f"{label}/seed{seed}", spec=spec) as child:
            child.log_params({**child_config.to_params(), "data.source": data.source,
                              **{f"model.{k}": v for k, v in model_changes.items()}})
            fitted = fit_model(child, child_config, data, model_config(child_config, data, **model_changes))
            metrics = outcome_metrics(fitted, data)
            child.log_metrics({k: v for k, v in metrics.items() if not k.startswith(("test/", "val/"))})
        cell.add(metrics, child.run_id, _validation_curve(fitted))
        score = metrics.get("test/acc", metrics.get("test/mse"))
        print(f"  {config.entry_point} {label} seed {seed}: "
              f"{'test/acc' if 'test/acc' in metrics else 'test/mse'} {score:.4f} ({cell.health[-1]})", flush=True)


def _validation_curve(fitted: Fitted) -> list[float]:
    return fitted.history.series("val/acc") or fitted.history.series("val/mse")


def _pooling(parent: ProjectRun, config: CVKANRunConfig) -> Table:
    rows, metrics, cells = [], {}, {}
    for domain in config.domain_list:
        for pooling in POOLINGS:
            cell = cells[domain, pooling] = Cell()
            _children(parent, config, f"{domain}/{pooling}",
                      lambda seed, d=domain: domain_data(config, d, seed=seed, data_seed=config.seed),
                      {"pooling": pooling}, domain, cell)
            key = "test/acc" if "test/acc" in cell.values else "test/mse"
            mean, std = summarize(cell.values[key])
            rows.append({"domain": domain, "pooling": pooling, "metric": key, "mean": mean, "std": std,
                         "n": len(cell.values[key]), "document": DOCUMENT_POOLING.get((domain, pooling)),
                         "healthy": f"{cell.health.count('ok')}/{len(cell.health)}"})
            metrics[f"pooling/{domain}/{pooling}/mean"], metrics[f"pooling/{domain}/{pooling}/std"] = mean, std
        by = {r["pooling"]: r["mean"] for r in rows if r["domain"] == domain}
        metrics[f"pooling/{domain}/attention_minus_mean"] = by["attention"] - by["mean"]
        metrics[f"pooling/{domain}/magnitude_minus_attention"] = by["magnitude"] - by["attention"]
        document = {p: DOCUMENT_POOLING.get((domain, p)) for p in ("mean", "attention")}
        if None not in document.values():
            metrics[f"pooling/{domain}/document_attention_minus_mean"] = document["attention"] - document["mean"]
    metrics.update(_stft_speedup(config))
    columns = ["domain", "pooling", "metric", "mean", "std", "n", "document", "healthy"]
    deltas = [{"domain": d, "attention - mean": metrics[f"pooling/{d}/attention_minus_mean"],
               "document": metrics.get(f"pooling/{d}/document_attention_minus_mean"),
               "magnitude - attention": metrics[f"pooling/{d}/magnitude_minus_attention"]}
              for d in config.domain_list]
    delta_columns = ["domain", "attention - mean", "document", "magnitude - attention"]
    markdown = (markdown_table(rows, columns) + "\n\n" + markdown_table(deltas, delta_columns) + "\n")
    headline = [f"{d['domain']}: attention - mean {d['attention - mean']:+.4f} (document "
                f"{'n/a' if d['document'] is None else format(d['document'], '+.3f')}), magnitude - attention "
                f"{d['magnitude - attention']:+.4f}" for d in deltas]
    return Table("Pooling by domain (document 003's table)", metrics, markdown,
                 html_table(rows, columns) + html_table(deltas, delta_columns),
                 pooling_table_figure(rows, DOCUMENT_POOLING), headline, list(cells.values()))


def _stft_speedup(config: CVKANRunConfig) -> dict[str, float]:
    """Claim 003-h, on the audio the table used: a training epoch with STFT computed per batch over one
    with STFT precomputed, timed interleaved in this process (with the noise floor)."""
    if "audio" not in config.domain_list:
        return {}
    from lightning_modules.cvkan import CVKANConfig
    from projects.cvkan.step_timing import feature_mode_epochs

    waves, _, _ = audio_waveforms(config, config.seed)
    model = CVKANConfig(d=config.d, hidden=config.hidden, n_layers=config.n_layers, n_classes=waves.n_classes,
                        lr=config.lr)
    return feature_mode_epochs(waves, model, batch_size=config.batch_size, seed=config.seed).metrics()


def _hierarchy(parent: ProjectRun, config: CVKANRunConfig) -> Table:
    rows, metrics, curves, cells = [], {}, {}, []
    for name in HIERARCHIES:
        cell = Cell()
        cells.append(cell)
        _children(parent, config, name, lambda seed: signal_noise_data(config, seed=seed, data_seed=config.seed),
                  HIERARCHY_MODELS[name], None, cell)
        curves[name] = cell.curves
        params = cell.values["n_params/total"][0]
        at3 = [c[2] if len(c) >= 3 else math.nan for c in cell.curves]
        reach = [epochs_to(c, TARGET) for c in cell.curves]
        doc_params, doc_acc, doc_epochs = DOCUMENT_HIERARCHY[name]
        acc3, acc3_std = summarize(at3)
        row = {"model": name, "params": params, "document params": doc_params, "val/acc epoch 3": acc3,
               "std": acc3_std, "document val/acc": doc_acc, "epochs to 99 %": median_epochs(reach),
               "reached": f"{sum(not math.isnan(r) for r in reach)}/{len(reach)}",
               "document epochs": doc_epochs, "test/acc": summarize(cell.values.get("test/acc", []))[0],
               "healthy": f"{cell.health.count('ok')}/{len(cell.health)}"}
        rows.append(row)
        metrics.update({f"hier/{name}/params": params, f"hier/{name}/val_acc_epoch3": acc3,
                        f"hier/{name}/val_acc_epoch3_std": acc3_std, f"hier/{name}/epochs_to_99": row["epochs to 99 %"],
                        f"hier/{name}/test_acc": row["test/acc"]})
    metrics["hier/params_ratio_flat_over_shared"] = metrics["hier/flat/params"] / metrics["hier/shared/params"]
    metrics["hier/params_ratio_per_level_over_flat"] = metrics["hier/per_level/params"] / metrics["hier/flat/params"]
    columns = ["model", "params", "document params", "val/acc epoch 3", "std", "document val/acc", "epochs to 99 %",
               "reached", "document epochs", "test/acc", "healthy"]
    headline = [f"{r['model']}: {r['params']:.0f} params, val/acc@3 {r['val/acc epoch 3']:.4f} "
                f"(document {r['document val/acc']:.3f}), epochs to 99 % {r['epochs to 99 %']}" for r in rows]
    return Table("Flat against hierarchical stacks (document 003's table)", metrics,
                 markdown_table(rows, columns) + "\n", html_table(rows, columns),
                 convergence_figure(curves, TARGET), headline, cells)



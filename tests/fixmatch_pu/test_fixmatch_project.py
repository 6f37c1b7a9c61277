"""Document 004's project: parameters and data files checked before anything runs (one line, exit
code 2, no store), the tiny runs read back from MLflow (the original settings carry the pseudo-label
and prior findings, the prior from the data does not), the user's MRC + STAR micrographs, the
supervised baseline's peers as nested runs, and the same metrics for the same seed."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from _entry import assert_rejected, run_main
from lightning_modules.fixmatch_pu.data import (MicrographConfig, simulate_micrograph, write_micrograph,
                                                write_star_coordinates, write_topaz_coordinates)
from projects.fixmatch_pu import FixMatchPURunConfig, train_and_evaluate
from projects.fixmatch_pu.config import VARIANT_SETTINGS
from projects.fixmatch_pu.train import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


def _micrographs(root: Path, n: int = 7, field: int = 160) -> dict[str, str]:
    """`n` simulated micrographs written as MRC, their particles as one STAR and one Topaz file, and
    broken files beside them."""
    folder = root / "mrc"
    folder.mkdir(parents=True)
    star_rows = []
    for i in range(n):
        image, centres, _ = simulate_micrograph(MicrographConfig(field=field, box=32, n_particles=6, seed=i))
        write_micrograph(folder / f"mic{i:02d}.mrc", image, 2.0)
        star_rows.append((f"mic{i:02d}.mrc", centres))
    import pandas as pd
    import starfile

    table = pd.DataFrame([{"rlnMicrographName": name, "rlnCoordinateX": float(c), "rlnCoordinateY": float(r)}
                          for name, centres in star_rows for r, c in centres])
    starfile.write({"particles": table}, root / "particles.star", overwrite=True)
    write_topaz_coordinates(root / "particles.txt", star_rows[0][1], "mic00.mrc")
    outside = table.copy()
    outside.loc[0, "rlnCoordinateX"] = field + 50.0
    starfile.write({"particles": outside}, root / "outside.star", overwrite=True)
    (root / "broken.star").write_text("data_particles\nloop_\n_rlnCoordinateX #1\n_rlnOther #2\n1 2\n")
    bad = root / "badmrc"
    bad.mkdir()
    (bad / "mic00.mrc").write_bytes(b"not an mrc file at all" * 10)
    write_star_coordinates(root / "one.star", star_rows[0][1], "mic00.mrc")
    return {"mrc": str(folder), "star": str(root / "particles.star"), "outside": str(root / "outside.star"),
            "broken": str(root / "broken.star"), "badmrc": str(bad), "topaz": str(root / "particles.txt"),
            "empty": str(root)}


BAD = [
    (["--prior", "1.5"], "prior", "'data' or a number in (0, 1)"),
    (["--prior", "-0.1"], "prior", "'data' or a number in (0, 1)"),
    (["--prior", "often"], "prior", "'data' or a number in (0, 1)"),
    (["--threshold", "1.2"], "threshold", "a finite number >= 0 and <= 1"),
    (["--threshold", "-0.5"], "threshold", "a finite number >= 0 and <= 1"),
    (["--variant", "fixmatch"], "variant", "one of original, debugged, v2, supervised_baseline"),
    (["--lr", "0"], "lr", "a finite number > 0"),
    (["--n_micrographs", "5"], "n_micrographs", "an integer"),
    (["--micrographs", "{mrc}"], "coordinates", "a value whenever micrographs is given"),
    (["--micrographs", "{mrc}", "--coordinates", "{broken}"], "coordinates", "rlnCoordinateX and rlnCoordinateY"),
    (["--micrographs", "{mrc}", "--coordinates", "{outside}"], "coordinates", "coordinates within the micrograph"),
    (["--micrographs", "{badmrc}", "--coordinates", "{star}"], "micrographs", "an MRC file holding one 2-D micrograph"),
    (["--micrographs", "{empty}", "--coordinates", "{star}"], "micrographs", "a folder of MRC micrographs"),
    (["--micrographs", "{mrc}", "--coordinates", "{topaz}"], "coordinates", "lists no particle"),
]


@pytest.mark.parametrize("args, name, expected", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_parameter_or_data_file_exits_2_with_one_line_and_no_run(tmp_path: Path, args, name, expected,
                                                                      monkeypatch, capsys) -> None:
    files = _micrographs(tmp_path / "files")
    store = tmp_path / "store" / "mlflow.db"
    result = run_main(main, [a.format(**files) for a in args], store, monkeypatch, capsys)
    if "lists no particle" in expected:  # the problem is in the file, not the value
        assert result.returncode == 2 and expected in result.stderr and not store.exists()
        return
    assert_rejected(result, name, expected, store)


def test_the_variants_carry_the_documents_settings() -> None:
    original, debugged, v2 = (FixMatchPURunConfig(variant=v) for v in ("original", "debugged", "v2"))
    assert (original.setting("prior"), original.setting("threshold"), original.setting("lr")) == (0.3, 0.95, 1e-3)
    assert (debugged.setting("prior"), debugged.setting("threshold"), debugged.setting("lr"),
            debugged.setting("consistency_weight"), debugged.setting("rampup_epochs")) == ("data", 0.75, 5e-5, 0.3, 30)
    assert (v2.setting("lr"), v2.setting("clip"), v2.setting("accumulate"), v2.setting("warmup_epochs")) == (
        1e-5, 0.5, 4, 10)
    assert FixMatchPURunConfig(variant="original", lr=0.01).setting("lr") == 0.01
    assert set(VARIANT_SETTINGS) == {"original", "debugged", "v2", "supervised_baseline"}


TINY = dict(epochs=2, n_micrographs=7, particles_per_micrograph=10, negatives_per_micrograph=30, width=4,
            batch_size=16, positive_batch_size=4, log_every=5)


def _run(**fields) -> mlflow.entities.Run:
    summary = train_and_evaluate(FixMatchPURunConfig(**{**TINY, **fields}))
    return mlflow.MlflowClient().get_run(summary.run_id)


@pytest.mark.slow
def test_tiny_original_run_logs_the_monitoring_targets_and_the_prior_finding(tracking_uri: str) -> None:
    run = _run(variant="original")
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED" and tags["fixlab.variant"] == "fixmatch_pu_original"
    assert "PU_PRIOR_MISMATCH" in tags["fixlab.findings"]
    assert {"train/pseudo_label_rate", "pseudo/rate_at_0.95", "pseudo/rate_at_0.75", "val/auc", "val/ap",
            "val/pred_std", "pu/risk_positive", "pu/risk_negative", "pu/prior_configured", "pu/prior_estimated",
            "grad_norm/total", "test/auc", "grad/norm_median", "picks/precision", "perf/train_patches_per_s",
            "stability/val_auc_max_drop"} <= set(metrics)
    assert metrics["pu/prior_configured"] == pytest.approx(0.3) and 0 < metrics["pu/prior_estimated"] < 0.3
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val/auc")
    assert len(history) == 2  # per epoch
    figures = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert {"figures/val_auc.png", "figures/picks.png", "figures/patches.png"} <= figures
    assert tags["fixlab.claim.004_b"].startswith("reproduced")


@pytest.mark.slow
def test_the_prior_from_the_data_gives_no_prior_finding_and_the_same_seed_the_same_metrics(tracking_uri: str
                                                                                          ) -> None:
    keep = lambda m: {k: repr(v) for k, v in m.items() if not k.startswith(("system/", "perf/"))}  # noqa: E731
    run, again = _run(variant="debugged"), _run(variant="debugged")
    assert "PU_PRIOR_MISMATCH" not in run.data.tags["fixlab.findings"]
    assert run.data.metrics["pu/prior_configured"] == pytest.approx(run.data.metrics["pu/prior_estimated"], abs=1e-4)
    assert keep(run.data.metrics) == keep(again.data.metrics)


@pytest.mark.slow
def test_the_users_mrc_and_star_files_train_a_model(tracking_uri: str, tmp_path: Path) -> None:
    files = _micrographs(tmp_path / "files")
    run = _run(variant="debugged", epochs=1, box=32, micrographs=files["mrc"], coordinates=files["star"])
    assert run.info.status == "FINISHED" and "7 micrographs from" in run.data.params["data.source"]
    assert np.isfinite(run.data.metrics["test/auc"])


@pytest.mark.slow
def test_supervised_baseline_trains_each_peer_as_a_child(tracking_uri: str) -> None:
    parent = _run(variant="supervised_baseline", epochs=1)
    client = mlflow.MlflowClient()
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["fixlab.child"] for c in children) == ["fixmatch_nnpu", "ge_binomial", "nnpu", "pn"]
    assert all(c.info.status == "FINISHED" for c in children)
    metrics = parent.data.metrics
    assert {f"peers/{p}/test_auc" for p in ("pn", "ge_binomial", "nnpu", "fixmatch_nnpu")} <= set(metrics)
    assert "fixlab.claim.004_e" in parent.data.tags and "fixlab.children_health" in parent.data.tags
    assert "tables/peers.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "tables")}

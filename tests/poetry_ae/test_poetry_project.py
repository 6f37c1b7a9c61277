"""Document 002's project: parameters and data files checked before anything runs, the tiny runs of
every kind read back from MLflow (a single run with its reconstructions and latents, the scaled run
with its 64-hidden reference child, both comparisons with their children), and the same metrics for
the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from _entry import assert_rejected, run_main
from projects.poetry_ae import PoetryRunConfig, train_and_evaluate
from projects.poetry_ae.train import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

POEMS = ["The night is dark and the stars are bright above the sea",
         "Love is the light that burns in the heart of the night",
         "The sea is deep and the wind is cold upon the shore tonight",
         "A bird sings in the morning light and the day is new",
         "The rain falls soft upon the roof and the world is still"] * 4


def _files(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "poems.json").write_text(json.dumps(POEMS))
    (root / "broken.json").write_text("[\"unclosed")
    (root / "noise.txt").write_text("1234 5678 !!!! ???? ----\n\n9999 ####\n")
    (root / "vectors.txt").write_text("the 0.1 0.2\nnight 0.3\n")
    (root / "empty.txt").write_text("")
    return {name.split(".")[0]: str(root / name) for name in ("poems.json", "broken.json", "noise.txt",
                                                              "vectors.txt", "empty.txt")} | {
        "missing": str(root / "nope.txt")}


BAD = [
    (["--variant", "transformer"], "variant", "one of rnn_baseline"),
    (["--epochs", "0"], "epochs", "an integer"),
    (["--batch_size", "many"], "batch_size", "an integer"),
    (["--lr", "0"], "lr", "a finite number > 0"),
    (["--vectors", "word2vec"], "vectors", "one of minilm, glove50"),
    (["--init", "xavier"], "init", "one of orthogonal, default"),
    (["--max_len", "10", "--overlap", "10"], "overlap", "below max_len"),
    (["--hidden", "-4"], "hidden", "an integer"),
    (["--poems_path", "{missing}"], "poems_path", "no such file"),
    (["--poems_path", "{broken}"], "poems_path", "allowed"),
    (["--poems_path", "{noise}"], "poems_path", "allowed"),
    (["--vectors_path", "{vectors}"], "vectors_path", "allowed"),
    (["--vectors_path", "{empty}"], "vectors_path", "allowed"),
]


@pytest.mark.parametrize("args, name, expected", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_parameter_or_data_file_exits_2_with_one_line_and_no_run(tmp_path: Path, args, name, expected,
                                                                      monkeypatch, capsys) -> None:
    files = _files(tmp_path / "files")
    store = tmp_path / "store" / "mlflow.db"
    assert_rejected(run_main(main, [a.format(**files) for a in args], store, monkeypatch, capsys), name, expected, store)


def test_the_variants_choose_the_documents_models() -> None:
    base, scaled, final = (PoetryRunConfig(variant=v).model_fields()
                           for v in ("rnn_baseline", "rnn_scaled", "lstm_attention_cosine"))
    assert (base["cell"], base["hidden"], base["loss"], base["attention"]) == ("rnn", 64, "mse", False)
    assert scaled["hidden"] == 512 and (final["cell"], final["hidden"], final["attention"], final["loss"]) == (
        "lstm", 512, True, "hybrid")
    assert PoetryRunConfig(variant="rnn_baseline", hidden=32).model_fields()["hidden"] == 32


def _run(tracking_uri: str, **fields) -> tuple[mlflow.entities.Run, object]:
    summary = train_and_evaluate(PoetryRunConfig(**fields))
    return mlflow.MlflowClient().get_run(summary.run_id), summary


TINY = dict(epochs=2, max_len=12, overlap=2, log_every=5, batch_size=8)


@pytest.fixture
def poems(tmp_path: Path) -> str:
    return _files(tmp_path / "files")["poems"]


@pytest.mark.slow
def test_tiny_baseline_logs_the_documents_measurements_and_registers(tracking_uri: str, poems: str) -> None:
    run, summary = _run(tracking_uri, variant="rnn_baseline", poems_path=poems, vectors="glove50", **TINY)
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED" and tags["fixlab.variant"] == "ae_rnn_baseline"
    assert {"test/token_cosine", "test/seq_cosine", "test/mse", "test/rmse", "best/epoch", "n_params/total",
            "n_params/at_document_dim", "latent/effective_dims", "latent/pca_var_1", "grad/vanishing_found",
            "mean/token_cosine", "data/preservation", "data/coverage", "perf/train_seq_per_s",
            "perf/encode_seq_per_s"} <= set(metrics)
    assert -1.0 <= metrics["test/token_cosine"] <= 1.0 and 0 < metrics["latent/effective_dims"] <= 16
    assert metrics["n_params/at_document_dim"] != metrics["n_params/total"]  # 50-d vectors here, 300-d in the note
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "reconstructions.txt" in artifacts
    text = Path(client.download_artifacts(run.info.run_id, "reconstructions.txt")).read_text()
    assert "original:" in text and "reconstructed:" in text and "token cosine" in text
    assert "figures/latents_by_length.png" in {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert any(k.startswith("fixlab.claim.002_a") for k in tags)
    assert summary.registered_version == 1


@pytest.mark.slow
def test_same_seed_same_metrics(tracking_uri: str, poems: str) -> None:
    keep = lambda m: {k: v for k, v in m.items() if not k.startswith(("system/", "perf/"))}  # noqa: E731
    a, _ = _run(tracking_uri, variant="rnn_baseline", poems_path=poems, vectors="glove50", **TINY)
    b, _ = _run(tracking_uri, variant="rnn_baseline", poems_path=poems, vectors="glove50", **TINY)
    assert keep(a.data.metrics) == keep(b.data.metrics)


def _children(run: mlflow.entities.Run) -> list[mlflow.entities.Run]:
    return mlflow.MlflowClient().search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")


@pytest.mark.slow
def test_scaled_run_measures_its_gain_over_a_64_hidden_child(tracking_uri: str, poems: str) -> None:
    run, _ = _run(tracking_uri, variant="rnn_scaled", poems_path=poems, vectors="glove50", hidden=32,
                  **{**TINY, "epochs": 1})
    children = _children(run)
    assert [c.data.tags["fixlab.child"] for c in children] == ["hidden64/seed0"]
    metrics = run.data.metrics
    child = children[0].data.metrics
    assert child["n_params/total"] > metrics["n_params/total"]  # the reference is the bigger one here (32 < 64)
    assert metrics["scaled/gain_over_64"] == pytest.approx(metrics["test/token_cosine"]
                                                           - metrics["scaled/reference_token_cosine"])


@pytest.mark.slow
@pytest.mark.parametrize("variant, models, key", [
    ("teacher_forcing_per_batch", {"per_step", "per_batch"}, "tf/per_step_minus_per_batch"),
    ("decomposition", {"mse", "hybrid", "mse_attention", "hybrid_attention"}, "decomp/loss_gain"),
])
def test_comparison_parent_holds_the_table_and_children(tracking_uri: str, poems: str, variant: str,
                                                        models: set[str], key: str) -> None:
    run, summary = _run(tracking_uri, variant=variant, poems_path=poems, vectors="glove50", n_seeds=1,
                        hidden=16, **{**TINY, "epochs": 1})
    children = _children(run)
    assert {c.data.tags["fixlab.child"] for c in children} == {f"{m}/seed0" for m in models}
    assert all(c.info.status == "FINISHED" for c in children) and key in run.data.metrics
    assert run.data.tags["fixlab.children_health"].startswith(f"{len(models)} children: ")
    client = mlflow.MlflowClient()
    assert "token cosine" in Path(client.download_artifacts(run.info.run_id, f"tables/{variant}.md")).read_text()
    assert summary.registered_version is None

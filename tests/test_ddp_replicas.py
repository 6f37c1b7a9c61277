"""Replicas drifting apart (REPLICAS_DIVERGED): data-parallel processes that train different models.

Two processes, gloo, CPU. One spawn runs every case, each the short program a user writes with
the bug exactly as users make it, in plain PyTorch (`watch`) and Lightning (strategy "ddp",
launched like torchrun), each recording into its own MLflow run. Every case also compares the
ranks' final parameters directly (an all-gather: the reference the checksums are judged against).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

import mlflow_plugins
from _models import data
from mlflow_plugins.analysis import ReplicaCheck, ReplicaSync, RuleSet
from mlflow_plugins.analysis.replicas import DEFAULT_TOLERANCE
from mlflow_plugins.findings import CODES
from mlflow_plugins.pytorch.checksums import param_checksums
from mlflow_plugins.pytorch.replica_watch import ReplicaWatch, _sharded

WORLD, STEPS, LOG_EVERY = 2, 6, 2
HEAD = ("module.0.weight", "module.0.bias", "module.2.weight", "module.2.bias")

# case -> (parameters that must be named, the step of the first check that sees it); None: healthy
PLAIN: dict[str, tuple[tuple[str, ...], int] | None] = {
    "healthy": None,
    "accumulate_with_no_sync": None,  # no_sync() on every micro-batch but the last: correct
    "forward_through_module": (HEAD, 0),  # ddp_model.module(x): no gradient all-reduce
    "clip_on_rank_zero": (HEAD, 0),  # clip_grad_norm_ inside `if rank == 0:`
    "scheduler_on_rank_zero": (HEAD, 2),  # scheduler.step() inside the rank-0 logging block
    "no_sync_every_step": (HEAD, 0),  # `with ddp_model.no_sync():` around every backward
    "head_reset_after_wrap": (("module.2.weight", "module.2.bias"), 0),  # re-init after DDP()
}
LIGHTNING: dict[str, tuple[tuple[str, ...], int] | None] = {
    "lightning_healthy": None,
    "lightning_clip_rank_zero_only": (("model.0.weight", "model.0.bias", "model.2.weight",
                                       "model.2.bias"), 0),  # @rank_zero_only on a hook that clips
}
CASES = {**PLAIN, **LIGHTNING}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def _train_plain(rank: int, case: str, run_id: str | None) -> dict[str, Any]:
    """The user's DDP loop, with the case's bug; each rank trains on its own shard."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = _model()
    ddp_model = DDP(model)
    if case == "head_reset_after_wrap":  # per-rank seed (for augmentation), then a late re-init
        torch.manual_seed(1000 + rank)
        model[2].reset_parameters()
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x, y = data(64, seed=1 + rank)
    with mlflow_plugins.watch(ddp_model, optimizer, log_every=LOG_EVERY, run_id=run_id) as monitor:
        for _ in range(STEPS):
            optimizer.zero_grad()
            if case == "accumulate_with_no_sync":
                with ddp_model.no_sync():
                    (_loss(ddp_model, x[:32], y[:32]) / 2).backward()
                (_loss(ddp_model, x[32:], y[32:]) / 2).backward()
            elif case == "no_sync_every_step":
                with ddp_model.no_sync():
                    _loss(ddp_model, x, y).backward()
            elif case == "forward_through_module":
                _loss(ddp_model.module, x, y).backward()
            else:
                _loss(ddp_model, x, y).backward()
            if case == "clip_on_rank_zero" and rank == 0:
                torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), max_norm=0.1)
            optimizer.step()
            if case == "scheduler_on_rank_zero" and rank == 0:
                scheduler.step()
    return {"findings": [f.to_dict() for f in monitor.findings],
            "recorder": monitor.session.report.run_id, "differ": _differ(ddp_model)}


def _train_lightning(rank: int, case: str) -> dict[str, Any]:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import rank_zero_only

    from mlflow_plugins import GradientHealthCallback

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = _model()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return _loss(self.model, *batch)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class ClipsOnRankZero(Classifier):
        @rank_zero_only  # meant for logging the norm; the clipping came along
        def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(), max_norm=0.1)
            self.print(f"grad norm {norm:.3f}")

    x, y = data(128, seed=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    module = ClipsOnRankZero() if case == "lightning_clip_rank_zero_only" else Classifier()
    callback = GradientHealthCallback(log_every=LOG_EVERY)
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=WORLD, strategy="ddp",
                         logger=False, callbacks=[callback], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    return {"findings": [f.to_dict() for f in callback.findings], "recorder": None,
            "differ": _differ(module)}


def _differ(model: nn.Module) -> dict[str, float]:
    """The reference: each parameter's largest difference between the ranks, over its norm."""
    out = {}
    for name, p in model.named_parameters():
        copies = [torch.empty_like(p) for _ in range(WORLD)]
        dist.all_gather(copies, p.detach().contiguous())
        out[name] = float((copies[0] - copies[1]).abs().max() / copies[0].norm())
    return out


def _missing_peer(rank: int) -> dict[str, Any]:
    """Rank 1 never comes to the check (last: the side group is out of step afterwards)."""
    watch = ReplicaWatch(list(_model().named_parameters()), timeout_s=2)
    if rank != 0:
        dist.barrier()  # alive, busy elsewhere
        return {}
    started = time.perf_counter()
    try:
        watch.check(0)
        error = ""
    except Exception as failure:  # noqa: BLE001 - what the adapters' guard turns into a finding
        error = f"{type(failure).__name__}: {failure}"[:200]
    waited = time.perf_counter() - started
    dist.barrier()
    return {"error": error, "waited": waited, "active": watch.active, "after": len(watch.check(2).summaries)}


def _worker(rank: int, port: int, run_ids: dict[str, str], out: str) -> None:
    started = time.perf_counter()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    results: dict[str, Any] = {"init": {"seconds": time.perf_counter() - started}}
    for case in PLAIN:  # the healthy run comes from MLFLOW_RUN_ID, as `mlflow run` sets it
        started = time.perf_counter()
        results[case] = _train_plain(rank, case, None if case == "healthy" else run_ids[case])
        results[case]["seconds"] = time.perf_counter() - started
    # Lightning launched like torchrun: it finds the process group initialized and joins it
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD),
                      RANK=str(rank), LOCAL_RANK=str(rank), NODE_RANK="0")
    for case in LIGHTNING:
        os.environ["MLFLOW_RUN_ID"] = run_ids[case]
        started = time.perf_counter()
        results[case] = _train_lightning(rank, case)
        results[case]["seconds"] = time.perf_counter() - started
    results["missing_peer"] = _missing_peer(rank)
    Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory, _mlflow_db_template: Path) -> dict[str, Any]:
    """Every case, run once in one spawn of two processes: {rank: {case: result}}, run ids."""
    root = tmp_path_factory.mktemp("ddp")
    shutil.copyfile(_mlflow_db_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("FIXLAB_SPOOL", str(root / "spool"))
        mlflow.set_tracking_uri(uri)  # exported as MLFLOW_TRACKING_URI: the processes inherit it
        client = mlflow.MlflowClient(uri)
        run_ids = {case: client.create_run("0", run_name=case).info.run_id for case in CASES}
        mp.setenv("MLFLOW_RUN_ID", run_ids["healthy"])
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        context = torch.multiprocessing.start_processes(
            _worker, args=(_free_port(), run_ids, str(root)), nprocs=WORLD, join=False,
            start_method="spawn")
        deadline = time.monotonic() + 240
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                for p in context.processes:
                    p.kill()
                pytest.fail("the DDP processes did not finish in 240 s")
        results = {r: json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)}
        yield {"results": results, "runs": run_ids, "client": client, "uri": uri}
        mlflow.set_tracking_uri(None)


def _replicas(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["code"] == "REPLICAS_DIVERGED"]


@pytest.mark.parametrize("case", [c for c, bug in CASES.items() if bug is not None])
def test_a_planted_bug_is_found_on_rank_zero_and_recorded(ddp, case):
    names, step = CASES[case]
    (found,) = _replicas(ddp["results"][0][case])
    evidence = found["evidence"]
    assert found["severity"] == "critical" and found["step"] == step and found["where"] == "replicas"
    assert evidence["params"] == ", ".join(names) and evidence["n_differ"] == len(names)
    assert evidence["world_size"] == 2 and evidence["max_rel_diff"] > 100 * DEFAULT_TOLERANCE
    assert f"differ across the 2 ranks at step {step}" in found["message"]
    # the reference: exactly the named parameters differ between the ranks
    differ = ddp["results"][0][case]["differ"]
    assert {n for n, d in differ.items() if d > 0} == set(names)
    tags = ddp["client"].get_run(ddp["runs"][case]).data.tags
    assert tags["fixlab.health"] == "critical" and "REPLICAS_DIVERGED" in tags["fixlab.findings"]


@pytest.mark.parametrize("case", [c for c, bug in CASES.items() if bug is None])
def test_healthy_ddp_keeps_bit_identical_replicas_and_says_nothing(ddp, case):
    for rank in range(WORLD):
        assert not _replicas(ddp["results"][rank][case])
        assert set(ddp["results"][rank][case]["differ"].values()) == {0.0}  # bit-identical
    tags = ddp["client"].get_run(ddp["runs"][case]).data.tags
    assert "REPLICAS_DIVERGED" not in tags["fixlab.findings"]


def test_rank_one_finds_the_same_and_records_nothing(ddp):
    rank0, rank1 = ddp["results"][0], ddp["results"][1]
    for case in PLAIN:
        assert rank0[case]["recorder"] == ddp["runs"][case] and rank1[case]["recorder"] is None
        assert [f["message"] for f in _replicas(rank1[case])] == [f["message"] for f in _replicas(rank0[case])]
    client, healthy = ddp["client"], ddp["runs"]["healthy"]
    assert len(client.search_runs(["0"])) == len(CASES)  # no rank made a run of its own
    history = client.get_metric_history(healthy, "grad_norm/total")  # one point per step: rank 0's
    assert sorted(m.step for m in history) == list(range(0, STEPS, LOG_EVERY))


def test_healthy_ddp_finds_what_one_process_finds(ddp):
    """The same model and loop in one process (no distributed): the same finding codes."""
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data(64, seed=1)
    with mlflow_plugins.watch(model, optimizer, log_every=LOG_EVERY) as monitor:
        assert not monitor.replicas.active
        for _ in range(STEPS):
            optimizer.zero_grad()
            _loss(model, x, y).backward()
            optimizer.step()
    one = sorted({f.code for f in monitor.findings})
    for case in ("healthy", "accumulate_with_no_sync"):
        assert sorted({f["code"] for f in ddp["results"][0][case]["findings"]}) == one


def test_a_rank_that_never_comes_fails_the_check_after_its_timeout_instead_of_hanging(ddp):
    outcome = ddp["results"][0]["missing_peer"]
    assert outcome["error"] and 1.5 < outcome["waited"] < 30
    assert outcome["active"] is False and outcome["after"] == 0  # it stops checking


# the pure rule -------------------------------------------------------------------------------

def _check(high: list[list[float]], low: list[list[float]], step: int = 4, world: int = 2,
           names: tuple[str, ...] | None = None) -> ReplicaCheck:
    names = names or tuple(f"layer{i}.weight" for i in range(len(high)))
    return ReplicaCheck(step, world, names, np.array(high, float), np.array(low, float))


def test_the_rule_names_the_first_differing_parameters_in_model_order_once():
    rules = RuleSet([ReplicaSync()])
    same = [[2.0, 0.5]] * 8
    assert rules.observe(_check(same, same)) == []
    high = [[2.0, 0.5], [2.0, 0.7], [2.0, 0.5], *[[3.0, 0.5]] * 5]
    (found,) = rules.observe(_check(high, same))
    assert found.code == "REPLICAS_DIVERGED" and found.step == 4 and found.where == "replicas"
    assert found.evidence["params"] == "layer1.weight, layer3.weight, layer4.weight, layer5.weight, layer6.weight, ..."
    assert found.evidence["n_differ"] == 6 and found.evidence["max_rel_diff"] == pytest.approx(1 / 3)
    assert found.message == CODES["REPLICAS_DIVERGED"].says.format_map({"step": 4, **found.evidence})
    assert "{" not in found.message
    assert rules.observe(_check(high, same, step=6)) == []  # once per run


def test_the_tolerance_separates_rounding_from_divergence():
    rules = RuleSet([ReplicaSync()])
    norm = 10.0
    noise = [[norm * (1 + 1e-9), 0.0]]  # far beyond float64 accumulation noise (~1e-16)
    assert rules.observe(_check(noise, [[norm, 0.0]])) == []
    assert rules.observe(_check([[norm * (1 + 1e-4), 0.0]], [[norm, 0.0]]))


def test_one_process_nonfinite_and_zero_parameters_are_not_divergence():
    rule = ReplicaSync()
    for check in (_check([[2.0, 1.0]], [[1.0, 1.0]], world=1),  # one process: nothing to compare
                  _check([[np.nan, 1.0]], [[1.0, 1.0]]),  # NONFINITE's to report
                  _check([[0.0, 0.0]], [[0.0, 0.0]])):  # an all-zero parameter on every rank
        assert rule.update(check, rule.init())[0] == []
    (found,), _ = rule.update(_check([[1.0, 0.0]], [[0.0, 0.0]]), rule.init())  # zero on one rank
    assert found.evidence["max_rel_diff"] == 1.0


def test_the_rule_state_round_trips():
    rules = RuleSet([ReplicaSync()])
    rules.observe(_check([[2.0, 0.0]], [[1.0, 0.0]]))
    again = RuleSet([ReplicaSync()])
    again.load_state_dict(rules.state_dict())
    assert again.observe(_check([[2.0, 0.0]], [[1.0, 0.0]], step=8)) == []


@pytest.mark.parametrize("value", [-1e-6, 1.0, float("nan"), "1e-6", True])
def test_a_bad_tolerance_is_refused(value):
    with pytest.raises(ValueError, match=r"tolerance=.* allowed: a number in \[0, 1\)"):
        ReplicaSync(value)


def test_the_watch_costs_nothing_without_distributed():
    watch = ReplicaWatch(list(_model().named_parameters()))
    assert not watch.active and watch.check(0).summaries == []
    with pytest.raises(ValueError, match="timeout_s=0 is not allowed"):
        ReplicaWatch([], timeout_s=0)


def test_sharded_parameters_are_not_replicas():
    layer = _model()
    assert not _sharded(layer, list(layer.parameters()))
    layer[0].weight.ds_id = 3  # a DeepSpeed ZeRO-3 partition
    assert _sharded(None, list(layer.parameters()))


def test_checksums_are_bounded_by_the_norm_and_exact_for_identical_values():
    params = [("a", nn.Parameter(torch.randn(1000, 100))), ("b", nn.Parameter(torch.zeros(3))),
              ("c", nn.Parameter(torch.randn(5, dtype=torch.complex64))),
              ("d", nn.Parameter(torch.randn(7).half()))]
    sums = param_checksums([p for _, p in params]).numpy()
    assert sums.shape == (4, 2) and np.all(np.abs(sums[:, 1]) <= sums[:, 0] + 1e-12)
    assert sums[0, 0] == pytest.approx(float(params[0][1].detach().double().norm()), rel=1e-14)
    shuffled = ("a", nn.Parameter(params[0][1].detach().flatten()[torch.randperm(100_000)]))
    again = param_checksums([shuffled[1]]).numpy()[0]
    assert np.max(np.abs(again - sums[0])) / sums[0, 0] < 1e-13  # another order, same checksum

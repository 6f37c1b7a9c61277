"""What a finding says: about the user's model (place, count, steps), generic fixes, documents
cited apart; one console line per code; the run's description and its health tags."""

from __future__ import annotations

import warnings

import mlflow
import torch

import mlflow_plugins
from mlflow_plugins.findings import CODES, Finding, announcement, describe, finding_codes, info_codes
from mlflow_plugins.recording.note import MARK, NOTE_TAG, run_note
from mlflow_plugins.run_record import run_report


def test_no_builtin_text_names_a_document():
    for code, info in CODES.items():
        for text in (info.meaning, info.says, info.hint):
            assert "Document" not in text and "document 0" not in text.lower(), (code, text)
            assert " K " not in f" {text} ", (code, text)  # every count is filled in or named


def test_the_message_fills_in_count_and_steps_from_the_evidence():
    f = Finding.of("GRAD_NEVER_UPDATED", 2, "encoder.weight", {"steps_without_gradient": 3, "last_step": 4})
    assert f.message == "no gradient (None or all-zero) in 3 consecutive optimizer steps, steps 2 to 4"
    assert "K" not in f.message.split()


def test_every_builtin_template_formats_with_the_evidence_its_rule_gives():
    evidence = {
        "GRAD_NEVER_UPDATED": {"steps_without_gradient": 3, "last_step": 2},
        "GRAD_VANISHING": {"mean_abs_grad": 1e-9, "threshold": 1e-7},
        "GRAD_EXPLODING": {"grad_norm": 340.0, "threshold": 100.0},
        "GRAD_NORM_OUT_OF_RANGE": {"median_grad_norm": 0.01, "band_low": 0.1, "band_high": 10.0, "window": 20},
        "NONFINITE": {"source": "activation", "dtype": "torch.float16", "autocast": True, "nan": True, "inf": False},
        "AMP_STEPS_SKIPPED": {"skipped_in_window": 12, "window": 100, "skipped_total": 12, "scale": 2.0},
        "NORM_GRAD_ATTENUATION": {"grad_ratio": 0.01, "threshold": 0.1},
        "NORM_ERASES_MAGNITUDE": {"magnitude_cv_in": 0.5, "magnitude_cv_out": 0.01, "threshold": 0.1},
        "PARAMS_FROZEN": {"n_frozen": 2, "n_params": 4, "frozen": "0.weight, 0.bias"},
        "UPDATES_NOT_APPLIED": {"grad_norm": 0.5, "ratio_max": 0.0, "last_step": 20,
                                "cause": "learning rate 0 in its param group", "lr": 0.0},
        "GRAD_NOT_RESET": {"n_stale": 4, "n_params": 4, "params": "0.weight, 0.bias"},
        "EVAL_IN_TRAIN_MODE": {"n_modules": 1, "modules": "drop"},
        "EVAL_NOT_DETERMINISTIC": {"max_abs_diff": 0.3, "rel_diff": 0.1},
        "EVAL_UPDATES_STATISTICS": {"n_buffers": 2, "buffers": "bn.running_mean, bn.running_var"},
        "EVAL_BEFORE_INIT": {"modules": "disc.0"},
        "AUTOCAST_NOT_APPLIED": {"n_modules": 1, "n_checked": 3, "dtype": "float32",
                                 "requested": "bfloat16", "modules": "lstm"},
        "REPLICAS_DIVERGED": {"n_differ": 2, "world_size": 2, "max_rel_diff": 0.01, "params": "fc.weight"},
        "DIAGNOSTICS_FAILED": {"error": "KeyError: x"},
    }
    assert set(evidence) == set(CODES)
    for code, ev in evidence.items():
        said = Finding.of(code, 7, "layer", ev).message
        assert said == CODES[code].says.format_map({"step": 7, **ev}) and "{" not in said, code


def test_a_user_code_or_unknown_evidence_still_says_what_was_seen():
    assert describe("MY_CODE", 4, {"value": 0.125, "below": 0.2}) == "MY_CODE at step 4 (value=0.125, below=0.2)"
    assert "at step 1" in Finding.of("GRAD_VANISHING", 1, "fc", {"other": 1}).message  # no KeyError
    rule = mlflow_plugins.Rule.metric("val/acc", below=0.3, for_epochs=2, code="NOT_LEARNING")
    state, found = rule.init(), []
    for epoch, value in enumerate([0.1, 0.2]):
        out, state = rule.update(mlflow_plugins.MetricValue("val/acc", value, 10 * epoch, epoch), state)
        found += out
    assert [f.message for f in found] == ["val/acc = 0.2, below 0.3 for 2 epochs in a row (steps 0 to 10)"]


def test_a_finding_round_trips_with_its_message_and_document():
    f = Finding("X_CODE", "warning", 3, "fc", {"a": 1}, "fix it", "seen", "Document 9 (t): said")
    assert Finding.from_dict(f.to_dict()) == f
    assert Finding.from_dict({"code": "X_CODE", "severity": "info", "step": 1, "where": "w"}).message


def test_one_console_line_per_code_with_the_places_counted():
    many = [Finding.of("GRAD_NEVER_UPDATED", 0, f"layer{i}.weight", {"steps_without_gradient": 3, "last_step": 2})
            for i in range(12)]
    info = [Finding.of("NORM_ERASES_MAGNITUDE", 0, "norm", {"magnitude_cv_in": 0.5, "magnitude_cv_out": 0.0})]
    lines = announcement(many + info)
    assert len(lines) == 1  # info findings are not announced
    assert lines[0].startswith("fixlab: GRAD_NEVER_UPDATED (critical) on 12 places (layer0.weight, "
                               "layer1.weight, layer2.weight and 9 more): no gradient")
    assert "Fix: " in lines[0]


def test_the_tags_separate_what_needs_attention_from_information():
    crit = Finding.of("NONFINITE", 1, "loss", {})
    warn = Finding.of("GRAD_VANISHING", 1, "fc", {})
    info = Finding.of("NORM_ERASES_MAGNITUDE", 1, "norm", {})
    assert finding_codes([warn, info, crit]) == "NONFINITE,GRAD_VANISHING"
    assert info_codes([warn, info, crit]) == "NORM_ERASES_MAGNITUDE"
    assert finding_codes([info]) == "none" and info_codes([]) == "none"


def test_the_run_note_leads_with_health_and_names_the_report():
    f = Finding.of("GRAD_EXPLODING", 5, "fc.weight", {"grad_norm": 300.0, "threshold": 100.0})
    note = run_note("critical", [f], lines=["Claims: 001-a holds"])
    assert note.splitlines()[0] == "**fixlab health: critical**"
    assert "GRAD_EXPLODING" in note and "gradient norm 300 is above 100" in note
    assert "Claims: 001-a holds" in note and "fixlab/report.html" in note and note.endswith(MARK)
    assert "No findings" in run_note("ok", [])


class _Detached(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(6)])
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x).detach())


def _train(model, steps=4):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(0)
    with mlflow_plugins.watch(model, opt, log_every=1) as monitor:
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 2, (8,))).backward()
            opt.step()
    return monitor


def test_a_detached_stack_is_announced_once_and_described_on_the_run(tracking_uri):
    with mlflow.start_run() as run:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monitor = _train(_Detached())
    lines = [str(w.message) for w in caught if "GRAD_NEVER_UPDATED" in str(w.message)]
    assert len(lines) == 1 and "on 12 places" in lines[0]
    assert all(not f.document for f in monitor.findings)  # a user's model cites no research note
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.health"] == "critical" and tags["fixlab.findings"] == "GRAD_NEVER_UPDATED"
    assert tags[NOTE_TAG].startswith("**fixlab health: critical**") and "12 places" not in tags[NOTE_TAG]
    assert "and 9 more" in tags[NOTE_TAG]


def test_a_users_own_description_is_never_replaced(tracking_uri):
    with mlflow.start_run() as run:
        mlflow.set_tag(NOTE_TAG, "my notes on this run")
        _train(_Detached(), steps=3)
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags[NOTE_TAG] == "my notes on this run"


def test_a_project_cites_its_document_on_the_codes_it_reproduces(tracking_uri):
    with mlflow.start_run() as run, run_report(run.info.run_id) as report:
        report.use_citations({"GRAD_NEVER_UPDATED": "Document 001 (Title): what it saw"})
        monitor = _train(_Detached(), steps=3)
        report.add_note(["Claims of Document 001 (Title):"])
    cited = {f.document for f in monitor.findings}
    assert cited == {"Document 001 (Title): what it saw"}
    note = mlflow.MlflowClient().get_run(run.info.run_id).data.tags[NOTE_TAG]
    assert "Reproduces Document 001 (Title)." in note and "Claims of Document 001 (Title):" in note


"""Served evaluation judges every output against the same drift budget as `optimize` (no server needed here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift_budget import DriftBudget
from quantserve.cli.commands import evaluate as evaluate_command
from quantserve.cli.evaluate_tables import print_table
from quantserve.errors import QuantserveError

RNG = np.random.default_rng(1)


def _outputs() -> dict[str, dict[str, np.ndarray]]:
    """Reference, a faithful variant and one whose second output lost a score channel."""
    logits = RNG.normal(size=(40, 10)) * 5  # a classifier commits to a class: a peaked softmax
    head = np.concatenate([RNG.uniform(0, 320, (40, 4, 50)), RNG.uniform(0, 1, (40, 3, 50))], axis=1)
    collapsed = head.copy()
    collapsed[:, 6] = 0.0
    return {
        "fp32": {"logits": logits, "head": head},
        "int8": {"logits": logits * 1.001, "head": head * 1.001},
        "bad": {"logits": logits, "head": collapsed},
    }


def _report(budget: DriftBudget | None) -> AccuracyReport:
    outputs = _outputs()
    variants = [VariantAccuracy(model, 40) for model in outputs]
    if budget is not None:
        judge_variants(variants, outputs, "fp32", budget, {}, None)
    return AccuracyReport("fp32", "heldout.npz", "logits", False, None, variants, budget.to_dict() if budget else None)


def test_every_output_of_every_variant_is_judged() -> None:
    report = _report(DriftBudget())
    scores = {v.model: v for v in report.variants}
    assert scores["fp32"].drift is None and scores["fp32"].violations == []
    assert scores["int8"].drift is not None and set(scores["int8"].drift) == {"logits", "head"}
    assert scores["int8"].drift["head"]["kind"] == "detection" and scores["int8"].violations == []
    # a head of pixel boxes: judged by its decoded boxes first (session 43, `optimizer.decoded_heads`), the collapsed
    # score channel showing in its channels where read
    box, correlation, error = scores["bad"].violations
    assert box.startswith("output 'head' (detection): box agreement (F1 at IoU 0.5) (score >= 0.25, class-aware NMS")
    assert correlation.startswith("output 'head' (detection): worst channel correlation (box channels at the ")
    assert correlation.endswith(" 0 < budget 0.98")
    assert error.startswith("output 'head' (detection): worst channel error (RMS / FP32 std) ")
    assert report.over_budget == ["bad"]
    assert evaluate_command.budget_lines(report) == [f"model 'bad' misses the drift budget: {box} (and 2 more)"]


def test_without_a_budget_only_the_accuracy_drop_counts() -> None:
    assert _report(None).over_budget == []


def test_drift_fields_round_trip_through_json(tmp_path: Path) -> None:
    _report(DriftBudget()).save(tmp_path)
    loaded = AccuracyReport.load(tmp_path / "accuracy.json")
    assert loaded.drift_budget == DriftBudget().to_dict()
    assert loaded.over_budget == ["bad"]
    assert next(v for v in loaded.variants if v.model == "int8").drift["logits"]["kind"] == "classification"  # type: ignore[index]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quantserve")
    evaluate_command.register(parser.add_subparsers())
    base = ["evaluate", "--models", "a,b", "--reference", "a", "--data", "d.npz", "--out", "o"]
    return parser.parse_args([*base, *argv])


def test_budget_flags_build_the_budget() -> None:
    args = _parse(["--min-cosine-worst", "0.9"])
    assert evaluate_command._budget(args) == DriftBudget(min_cosine_worst=0.9)
    assert evaluate_command._accuracy_drop_budget(args) == 1.0
    args = _parse(["--no-budget"])
    assert evaluate_command._budget(args) is None and evaluate_command._accuracy_drop_budget(args) is None
    args = _parse(["--no-budget", "--max-accuracy-drop", "2"])
    assert evaluate_command._accuracy_drop_budget(args) == 2.0


def test_the_headline_output_is_the_class_scores_not_the_argmax_label_beside_them() -> None:
    from loadtest.variant_scores import headline_output

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 10)).astype(np.float32)
    produced = {"label": logits.argmax(axis=1), "logits": logits}  # "label" sorts first
    assert headline_output(produced, None, None) == "logits"
    ids = produced["label"]
    assert headline_output({"label": ids, "code": ids.copy()}, None, None) == "code"  # ties: by name
    assert headline_output({"b": logits, "a": logits.copy()}, None, None) == "a"


def test_served_agreement_on_too_few_rows_is_noted_per_variant(tmp_path: Path) -> None:
    report = _report(DriftBudget())
    int8 = next(v for v in report.variants if v.model == "int8")
    # 40 rows agreeing 40 of 40 show top-1 agreement ≥ 0.937 only, not 0.99
    assert int8.thin_evidence == [
        "output 'logits': top-1 agreement 1 over 40 held-out rows shows only ≥ 0.937 (95 % lower bound), "
        "not the budget's 0.99; about 268 rows would (--data)"
    ]  # evaluate's rows come from --data (it read --eval, optimize's flag)
    report.save(tmp_path)
    assert AccuracyReport.load(tmp_path / "accuracy.json").variants[1].thin_evidence == int8.thin_evidence


def test_a_served_per_token_output_is_scored_over_its_real_tokens(monkeypatch) -> None:
    """Padded positions answer nothing: the headline cosine and the judged one both leave them out."""
    from loadtest import evaluator
    from quantserve.data import TensorData

    mask = np.zeros((30, 12), dtype=np.int64)
    mask[:, :6] = 1  # half of every row is padding
    data = TensorData({"input_ids": RNG.integers(5, 900, (30, 12)) * mask, "attention_mask": mask})
    hidden = RNG.normal(size=(30, 12, 96))
    served = hidden + RNG.normal(0, 0.02, hidden.shape)
    served[:, 6:] = -hidden[:, 6:]  # whatever the INT8 model computes for padding
    outputs = {"fp32": {"last_hidden_state": hidden}, "int8": {"last_hidden_state": served}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    int8 = next(v for v in report.variants if v.model == "int8")
    assert int8.samples == 30 and int8.cosine_min is not None and int8.cosine_min > 0.99
    assert int8.drift["last_hidden_state"]["kind"] == "token_embedding" and not int8.violations


EVAL_METRIC = """
import numpy as np

def accuracy(outputs, labels):
    return float((outputs["logits"].argmax(axis=1) == labels).mean())

def error_rate(outputs, labels):
    return {"value": float((outputs["logits"].argmax(axis=1) != labels).mean()), "higher_is_better": False}
"""


def _served_with_metric(monkeypatch, tmp_path: Path, spec: str, budget: DriftBudget | None) -> AccuracyReport:
    """fp32 answers 80 of 100 rows right; int8 the same; 'bad' answers 20 of those 80 differently."""
    from loadtest import evaluator
    from optimizer.user_metric import UserMetric
    from quantserve.data import TensorData

    (tmp_path / "eval_task_metric.py").write_text(EVAL_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    labels = np.arange(100) % 10
    logits = np.eye(10)[labels] * 8 + RNG.normal(0, 0.1, (100, 10))
    logits[80:] = np.eye(10)[(labels[80:] + 1) % 10] * 8  # the reference itself is wrong on 20 rows
    bad = logits.copy()
    bad[:20] = np.eye(10)[(labels[:20] + 3) % 10] * 8
    outputs = {"fp32": {"logits": logits}, "int8": {"logits": logits * 1.001}, "bad": {"logits": bad}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    data = TensorData({"x": np.zeros((100, 3), np.float32)}, labels)
    metric = UserMetric.load(spec)
    return evaluator.evaluate_accuracy("127.0.0.1:1", ["int8", "bad"], "fp32", data, budget=budget, metric=metric)


def test_the_users_metric_is_scored_on_every_served_model_and_budgeted(monkeypatch, tmp_path: Path) -> None:
    report = _served_with_metric(monkeypatch, tmp_path, "eval_task_metric:accuracy", DriftBudget())
    scores = {v.model: v.user_metric for v in report.variants}
    assert scores["fp32"] == {
        "spec": "eval_task_metric:accuracy",
        "value": 0.8,
        "reference": 0.8,
        "higher_is_better": True,
        "relative_drop": 0.0,
        "max_relative_drop": 0.01,
    }
    assert scores["int8"]["value"] == 0.8 and scores["bad"]["value"] == pytest.approx(0.6)
    assert scores["bad"]["relative_drop"] == pytest.approx(0.25)
    assert report.over_budget == ["bad"]
    bad = next(v for v in report.variants if v.model == "bad")
    assert bad.violations[-1] == "metric 'eval_task_metric:accuracy': relative drop 0.25 > budget 0.01"
    report.save(tmp_path / "r")
    loaded = AccuracyReport.load(tmp_path / "r" / "accuracy.json")
    assert next(v for v in loaded.variants if v.model == "bad").user_metric == scores["bad"]


def test_a_lower_is_better_metric_drops_when_it_rises(monkeypatch, tmp_path: Path) -> None:
    report = _served_with_metric(monkeypatch, tmp_path, "eval_task_metric:error_rate", DriftBudget())
    bad = next(v for v in report.variants if v.model == "bad")
    assert bad.user_metric is not None and bad.user_metric["higher_is_better"] is False
    assert bad.user_metric["relative_drop"] == pytest.approx(1.0)  # 0.2 → 0.4 errors: twice as many
    assert report.over_budget == ["bad"]


def test_without_a_budget_the_metric_is_recorded_not_judged(monkeypatch, tmp_path: Path) -> None:
    report = _served_with_metric(monkeypatch, tmp_path, "eval_task_metric:accuracy", None)
    bad = next(v for v in report.variants if v.model == "bad")
    assert bad.user_metric is not None and bad.user_metric["max_relative_drop"] is None
    assert report.over_budget == [] and bad.violations == []


def test_the_metric_shows_in_the_table_the_report_and_the_verdict(monkeypatch, tmp_path: Path, capsys) -> None:
    from loadtest.report import render

    report = _served_with_metric(monkeypatch, tmp_path, "eval_task_metric:accuracy", DriftBudget())
    print_table(report)
    printed = capsys.readouterr().out
    assert "eval_task_metric:accuracy" in printed and "0.6000" in printed
    assert "drift per output, against the budget" in printed and "MISSED" in printed and "top1_agreement" in printed
    report.save(tmp_path / "r")
    md_path, html_path = render(tmp_path / "r")
    markdown = Path(md_path).read_text()
    assert "| bad | metric | relative drop | 0.25 | ≤ 0.01 | MISSED |" in markdown.replace(
        "eval_task_metric:accuracy | ", ""
    )
    assert "eval_task_metric:accuracy" in Path(html_path).read_text()


def test_metric_flags_reach_the_budget() -> None:
    args = _parse(["--metric", "m:f", "--max-metric-drop", "0.05"])
    assert args.metric == "m:f" and evaluate_command._budget(args) == DriftBudget(max_metric_drop=0.05)


def test_a_served_embedding_whose_neighbours_changed_is_noted(monkeypatch, capsys, tmp_path: Path) -> None:
    from loadtest import evaluator
    from quantserve.data import TensorData

    alike = RNG.normal(size=128) + 0.15 * RNG.normal(size=(100, 128))
    noise = 0.06 * np.linalg.norm(alike, axis=1, keepdims=True) / np.sqrt(128) * RNG.normal(size=alike.shape)
    outputs = {"fp32": {"emb": alike}, "int8": {"emb": alike + noise}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    data = TensorData({"x": np.zeros((100, 3), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    int8 = next(v for v in report.variants if v.model == "int8")
    assert report.over_budget == [] and len(int8.notes) == 1 and "nearest held-out row changed" in int8.notes[0]
    report.save(tmp_path)
    assert AccuracyReport.load(tmp_path / "accuracy.json").variants[1].notes == int8.notes


def test_a_request_over_grpcs_2_gib_limit_is_refused_naming_the_batch_size_that_fits() -> None:
    from loadtest.request_data import check_request_size
    from quantserve.data import TensorData
    from quantserve.errors import QuantserveError

    images = np.broadcast_to(np.zeros(1, np.float32), (200, 3, 1024, 1024))  # 12.6 MB a row, no memory taken
    data = TensorData({"image": images})
    with pytest.raises(QuantserveError) as refused:
        check_request_size("huge.npz", data, 176, 256)
    assert str(refused.value) == (
        "huge.npz: a request of 176 rows is 2.21 GB, over gRPC's 2 GiB message limit; pass --batch-size 170 or less"
    )
    check_request_size("huge.npz", data, 176, 64)  # the runner sends slices of max_batch_size: 64 rows fit
    check_request_size("huge.npz", data, 170, 0)


KEYPOINT_METRIC = """
import numpy as np

def pixel_error(outputs, labels):
    return {"value": float(np.abs(outputs["points"] - labels).mean()), "higher_is_better": False}
"""


def test_float_truth_reaches_the_users_metric_and_no_class_metric(monkeypatch, tmp_path: Path) -> None:
    """Float truth (keypoints in pixels) was refused at load: it had to be scaled to integers by hand."""
    from loadtest import evaluator
    from optimizer.user_metric import UserMetric

    (tmp_path / "kp_task_metric.py").write_text(KEYPOINT_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    truth = RNG.uniform(0, 320, (60, 8))
    points = truth + RNG.normal(0, 1.0, truth.shape)
    outputs = {"fp32": {"points": points}, "int8": {"points": points + 0.001}, "bad": {"points": points + 4.0}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    held = tmp_path / "held.npz"
    np.savez(held, x=np.zeros((60, 3), np.float32), labels=truth)
    metric = UserMetric.load("kp_task_metric:pixel_error")
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8", "bad"], "fp32", held, budget=DriftBudget(), metric=metric
    )
    scores = {v.model: v.user_metric for v in report.variants}
    assert scores["fp32"]["value"] == pytest.approx(np.abs(points - truth).mean())
    assert scores["bad"]["relative_drop"] > 1 and report.over_budget == ["bad"]
    assert all(v.accuracy is None for v in report.variants)  # the truth is not class ids
    with pytest.raises(QuantserveError, match="read only with a --metric"):
        evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", held, budget=DriftBudget())


def test_the_side_by_side_load_keeps_evaluates_request_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`evaluate --request-timeout 120 --load-duration …`: the scoring waited 120 s a request, the load after it
    still gave up at loadtest's 30 s default."""
    from loadtest.load_run import LoadRun
    from quantserve.cli.commands import loadtest as loadtest_command

    seen: list[float] = []

    def record(settings: object, args: object) -> LoadRun:
        seen.append(settings.request_timeout_s)  # type: ignore[attr-defined]
        return LoadRun("m", [])

    monkeypatch.setattr(loadtest_command, "run_with_progress", record)
    monkeypatch.setattr(loadtest_command, "resolve_metrics_url", lambda args: None)
    args = argparse.Namespace(
        url="127.0.0.1:1",
        data=tmp_path / "d.npz",
        load_users=2,
        json=True,
        request_timeout=120.0,
        tls_ca=None,
        tls_cert=None,
        tls_key=None,
    )
    evaluate_command.load_side_by_side(args, ["a", "b"], 3.0)
    assert seen == [120.0, 120.0]

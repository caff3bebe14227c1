"""`evaluate` of a served decoder whose answer length follows its values (an --unbatched FP32 build: y [1, T, 8], T
its own per request). It stopped at "output 'y' cannot be joined along the batch axis: its batches have shapes
[1, 2, 8], [1, 1, 8]", with and without --metric; now each request's answer is compared with the reference's for the
same request: a changed length is the answer changed (counted, the first named), the others judged by cosine, and a
--metric gets the answers padded with NaN beside y__shapes, as `infer` saves them (session 66)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest import evaluator
from loadtest.served_answers import ServedModel
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import UserMetric
from quantserve.cli import main
from quantserve.data import TensorData
from quantserve.runner import RequestLog, concat_outputs

LENGTHS = {"fp32": (2, 3, 1), "same": (2, 3, 1), "longer": (2, 4, 1)}
SEEN: dict[str, dict[str, np.ndarray]] = {}


def _answers(model: str) -> list[np.ndarray]:
    """Each request's [1, T, 8]; 'same' keeps FP32's lengths with request 2's values turned (cosine ≈ 0)."""
    rng = np.random.default_rng(0)
    answers = [rng.random((1, t, 8)).astype(np.float32) + 0.5 for t in (2, 4, 1)]
    answers = [a[:, :t] for a, t in zip(answers, LENGTHS[model], strict=True)]
    if model == "same":
        answers[1] = answers[1] - answers[1].mean()
    return answers


def _served(monkeypatch: pytest.MonkeyPatch) -> None:
    def served_outputs(url, model, data, batch_size, source, served=None, request_timeout_s=30.0, state=None):  # type: ignore[no-untyped-def]
        answers = _answers(model)
        log = RequestLog()
        for answer in answers:
            log.record({"x": np.zeros((1, 8), np.float32)}, {"y": answer})
        served[model] = ServedModel("1", requests=log)
        return concat_outputs([{"y": a} for a in answers], pad=True)  # as served_outputs joins them

    monkeypatch.setattr(evaluator, "served_outputs", served_outputs)


def _evaluate(model: str, metric: UserMetric | None = None) -> Any:
    data = TensorData({"x": np.zeros((3, 8), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", [model], "fp32", data, budget=DriftBudget(), metric=metric)
    return report, next(v for v in report.variants if v.model == model)


def test_a_changed_length_is_the_answer_changed_the_other_requests_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    _served(monkeypatch)
    report, longer = _evaluate("longer")
    assert report.over_budget == ["longer"]
    assert longer.violations == [
        "output 'y': its shape differs from the reference's in 1 of 3 requests (request 2: [1, 4, 8] vs [1, 3, 8]): "
        "the answer changed, its values were compared on the other 2"
    ]
    record = longer.drift["y"]
    assert record["kind"] == "per request" and record["requests"] == 3 and record["requests_same_shape"] == 2
    assert record["cosine_worst"] == pytest.approx(1.0) and record["max_abs_diff"] == 0.0
    assert longer.per_request["max_abs_diff"] == 0.0 and np.isnan(longer.max_abs_diff)  # not "identical" (s66)
    assert any("compared request by request, never joined" in note for note in longer.notes), longer.notes


def test_values_of_the_references_shape_are_judged_by_cosine(monkeypatch: pytest.MonkeyPatch) -> None:
    _served(monkeypatch)
    report, same = _evaluate("same")
    assert report.over_budget == ["same"]
    mean, worst = same.violations
    assert mean.startswith("output 'y' (per request): cosine mean ") and "< budget" in mean, mean
    budget = f"< budget {DriftBudget().min_cosine_worst:g}"
    assert worst.startswith("output 'y' (per request): worst cosine ") and worst.endswith(budget), worst
    assert same.drift["y"]["requests_same_shape"] == 3 and same.cosine_min is not None and same.cosine_min < 0.5


def test_a_metric_gets_the_answers_padded_beside_each_requests_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    _served(monkeypatch)
    metric = UserMetric("m:f", lambda outputs, labels: SEEN.update(outputs) or float(np.nanmean(outputs["y"])))
    _, longer = _evaluate("longer", metric)
    assert SEEN["y"].shape == (3, 4, 8) and np.isnan(SEEN["y"][0, 2:]).all()
    np.testing.assert_array_equal(SEEN["y__shapes"], [[2, 8], [4, 8], [1, 8]])  # each sample's, in y (s66)
    assert longer.user_metric is not None and longer.user_metric["value"] is not None


def _decoder(path: Path, shift: float) -> Path:
    """y [N, L, 8] = (x[:, :, None] · I)[:, :L], L = clip(int(max(x) + shift), 1, 8): a length following the values."""
    ints = {"one": 1, "eight": 8, "ax0": [0], "zero": [0], "ax1": [1], "ax2": [2]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()]
    inits += [numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")]
    inits += [numpy_helper.from_array(np.array(shift, np.float32), "shift")]
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax2"], ["x3"]),
        helper.make_node("Mul", ["x3", "w"], ["z"]),
        helper.make_node("ReduceMax", ["x"], ["m0"], keepdims=0),
        helper.make_node("Add", ["m0", "shift"], ["m"]),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Clip", ["mi", "one", "eight"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Slice", ["z", "zero", "n1", "ax1"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L", 8])
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.e2e
def test_served_decoders_are_evaluated_request_by_request(
    tmp_path: Path, triton_server_factory: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.deploy import deploy

    rng = np.random.default_rng(0)
    np.savez(data := tmp_path / "d.npz", x=(rng.random((40, 8)) * rng.uniform(1, 9.5, (40, 1))).astype(np.float32))
    for name, shift in (("ref", 0.0), ("longer", 0.6)):
        flags = ["--calib", str(data), "--precision", "fp32", "--unbatched", "--skip-timing"]
        model = _decoder(tmp_path / f"{name}.onnx", shift)
        assert main(["-q", "optimize", str(model), *flags, "--out", str(tmp_path / name)]) == 0
        deploy(tmp_path / name, tmp_path / "repo", name)
    server = triton_server_factory(tmp_path / "repo")
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--reference", "ref", "--data", str(data)]
    assert main([*argv, "--models", "ref", "--out", str(tmp_path / "itself")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main([*argv, "--models", "longer", "--out", str(tmp_path / "longer-eval")]) == 1
    err = "".join(capsys.readouterr())  # the miss: stdout's verdict
    assert "output 'y': its shape differs from the reference's in " in err and "compared on the other " in err, err

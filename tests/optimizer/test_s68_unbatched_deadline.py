"""An --unbatched INT8 search stops at its deadline while it measures held-out drift, and says what it is doing.

human-models' CenterNet (batch fixed at 1, --unbatched, 200 held-out rows of 512², busy 2-core Xeon) spent 762 s of
its 300 s budget: its rows were run one request at a time with the budget checked between them, but the drift of its
(200, 128, 128, 80) keypoint heatmap then took minutes of metric work, unchecked, and the unit stopped only at the
profile. The "still running" line said "calibration: min/max ranges 64 of 64" all that time (probe 68G).

The clock here is fake: held-out rows take no time, and each output's drift measured inside a unit takes
OUTPUT_S, so the stop depends on nothing this machine does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_int8_search import VNNI

import optimizer.drift as drift
import optimizer.int8_search as int8_search
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.search_budget import SearchBudget
from quantserve.artifact import Artifact
from quantserve.data import TensorData

OUTPUT_S = 200.0  # fake seconds one output's drift takes to measure
ROW_S = 40.0  # fake seconds one held-out request of the dynamic candidate takes
ROWS = 12


def three_heads(path: Path) -> Artifact:
    """x [1, 16] (batch fixed at 1) → MatMul → Relu → MatMul → a, Relu(a) → MatMul → b, b → MatMul → c: three
    float outputs after a trunk INT8 can keep."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), f"w{i}") for i in range(4)]
    nodes = [
        helper.make_node("MatMul", ["x", "w3"], ["t"], name="trunk"),
        helper.make_node("Relu", ["t"], ["tr"], name="trunk_act"),
        helper.make_node("MatMul", ["tr", "w0"], ["a"], name="fc0"),
        helper.make_node("Relu", ["a"], ["r"], name="act"),
        helper.make_node("MatMul", ["r", "w1"], ["b"], name="fc1"),
        helper.make_node("MatMul", ["b", "w2"], ["c"], name="fc2"),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 16]) for name in ("a", "b", "c")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])], outputs)
    graph.initializer.extend(inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def requests(seed: int) -> TensorData:
    return TensorData({"x": np.random.default_rng(seed).standard_normal((ROWS, 16)).astype(np.float32)}, unbatched=True)


@pytest.fixture
def slow_drift(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The search's clock ([now]): each output's drift measured inside a stoppable unit advances it by OUTPUT_S."""
    now = [0.0]
    budgets: list[SearchBudget] = []
    measure = drift.output_metrics

    def slow(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if budgets and budgets[0].stops:
            now[0] += OUTPUT_S
        return measure(*args, **kwargs)

    def budget(seconds: float) -> SearchBudget:
        budgets.append(SearchBudget(seconds, lambda: now[0]))
        return budgets[0]

    monkeypatch.setattr(drift, "output_metrics", slow)
    monkeypatch.setattr(int8_search, "SearchBudget", budget)
    return now


def test_an_unbatched_candidate_is_stopped_between_outputs_of_its_held_out_drift(
    tmp_path: Path, slow_drift: list[float]
) -> None:
    """Outputs a and b are measured by 400 s; c would begin past the 300 s budget: stopped there, not at the
    profile after all three (600 s)."""
    progress: list[tuple[int, int, str]] = []
    settings = SearchSettings(max_search_s=300.0, max_probes=2, timing_repeats=1)
    search = SearchInt8(
        requests(1),
        requests(2),
        search=settings,
        cpu_flags=VNNI,
        allow_thin_evidence=True,
        on_progress=lambda done, total, what: progress.append((done, total, what)),
    )
    with pytest.raises(BudgetExceeded) as refused:
        search(three_heads(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    spent = refused.value.record.get("time_budget") or pytest.fail(str(refused.value))
    assert spent["left_undone"][0].endswith("candidate, stopped at the deadline during measuring drift of output 'c'")
    assert slow_drift[0] == 2 * OUTPUT_S and spent["overran_s"] == 100.0
    assert (ROWS, ROWS, "checking drift on held-out rows") in progress, progress  # not the calibration's count
    assert (2, 3, "measuring drift of output 'c'") in progress, progress


def test_an_unbatched_dynamic_candidate_is_stopped_between_its_held_out_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dynamic INT8's held-out requests (ROW_S each) were run as one whole composition, unchecked: all 12 (480 s)
    ran past the 300 s budget. Now the request that would end past it is not run (session 69)."""
    now = [0.0]
    run = OnnxRuntimeRunner.infer_impl

    def infer(runner: OnnxRuntimeRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        now[0] += ROW_S if "dynamic" in runner.path.name else 0.0
        return run(runner, feeds)

    monkeypatch.setattr(OnnxRuntimeRunner, "infer_impl", infer)
    monkeypatch.setattr(int8_search, "SearchBudget", lambda seconds: SearchBudget(seconds, lambda: now[0]))
    settings = SearchSettings(max_search_s=300.0, max_probes=2, timing_repeats=1)
    search = SearchInt8(requests(1), requests(2), search=settings, cpu_flags=VNNI, allow_thin_evidence=True)
    with pytest.raises(BudgetExceeded) as refused:
        search(three_heads(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    spent = refused.value.record.get("time_budget") or pytest.fail(str(refused.value))
    assert "the dynamic candidate, stopped at the deadline during the held-out drift run" in spent["left_undone"]
    assert now[0] == 7 * ROW_S  # the eighth request would end past 300 s


def test_a_candidate_that_holds_reports_its_timing(tmp_path: Path) -> None:
    progress: list[tuple[int, int, str]] = []
    loose = DriftBudget(min_channel_correlation=0.5, min_cosine_mean=0.5, min_cosine_worst=0.5)
    search = SearchInt8(
        requests(1),
        requests(2),
        budget=loose,
        search=SearchSettings(max_search_s=600.0, max_probes=2, timing_repeats=1),
        cpu_flags=VNNI,
        allow_thin_evidence=True,
        on_progress=lambda done, total, what: progress.append((done, total, what)),
    )
    search(three_heads(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    assert (0, 2, "timing") in progress and (1, 2, "timing") in progress, progress

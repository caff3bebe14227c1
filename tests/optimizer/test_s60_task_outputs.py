"""Independent yes/no tasks in one Sigmoid head (`--output-kind NAME=multitask`): ADMET-AI's 31 assays were refused
at label-set agreement 0.9104, the refusal saying only "deploy fp32", while every task kept ≥ 0.9928 of its
decisions (session 60). A multilabel refusal whose every label holds on its own names the kind with its figures; so
typed, the output is judged by its worst task and a build ships; a tagger keeps its label-set judgement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence
from optimizer.output_kinds import infer_output_kinds, parse_output_kinds
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.verify import VERIFY_BATCH
from quantserve.errors import QuantserveError

TASKS = 20


def _spread_flips(rows: int = 1000, per_task: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Scores of TASKS tasks and a build flipping `per_task` decisions of each task, each on rows of its own:
    every task agrees 1 - per_task / rows, the label sets 1 - TASKS · per_task / rows."""
    rng = np.random.default_rng(60)
    probs = rng.uniform(0.05, 0.95, (rows, TASKS)).astype(np.float32)
    for task in range(TASKS):  # flipped from clear of 0.5 (within 0.02 a flip is a near-tie, left out)
        flipped = probs[task * per_task : (task + 1) * per_task, task]
        flipped[np.abs(flipped - 0.5) < 0.05] = 0.3
    got = probs.copy()
    for task in range(TASKS):
        flipped = np.arange(task * per_task, (task + 1) * per_task)
        got[flipped, task] = 1.0 - probs[flipped, task]
    return probs, got


def test_a_label_set_refusal_whose_every_label_holds_names_the_multitask_kind_with_its_figures() -> None:
    probs, got = _spread_flips()
    report = measure_drift({"probs": probs}, {"probs": got}, {"probs": "multilabel"}, DriftBudget())
    assert not report.holds
    line = report.violations[0].line("multilabel")
    ties = report.outputs["probs"]["label_ties"]  # FP32's near-ties, left out (`optimizer.label_sets`)
    assert f"label-set agreement (at --label-threshold 0.5; {ties} decisions within 0.02 of it left out) 0.94 <" in line
    assert (
        "each of its 20 labels holds on its own (worst 0.9970, label 0): if they are independent tasks rather than "
        "one label set, judge them each with --output-kind probs=multitask"
    ) in line, line
    record = report.outputs["probs"]
    assert record["task_agreement_worst"] == pytest.approx(0.997) and record["tasks"] == TASKS
    assert "task_agreements" not in record  # a tagger's record keeps its worst only


def test_a_label_that_misses_on_its_own_or_a_typed_tagger_gets_no_such_line() -> None:
    probs, got = _spread_flips()
    got[500:520, 7] = 1.0 - probs[500:520, 7]  # task 7 flips 23 of 1000 decisions: it misses on its own
    report = measure_drift({"probs": probs}, {"probs": got}, {"probs": "multilabel"}, DriftBudget())
    assert not report.holds and "multitask" not in report.violations[0].line()
    probs, got = _spread_flips()
    typed = infer_output_kinds({"probs": probs}, {"probs": "multilabel"})  # the user's word: one label set
    report = measure_drift({"probs": probs}, {"probs": got}, typed, DriftBudget())
    assert not report.holds and "multitask" not in report.violations[0].line()


def test_multitask_is_judged_by_its_worst_task_with_the_label_sets_beside_it() -> None:
    probs, got = _spread_flips()
    kinds = infer_output_kinds({"probs": probs}, parse_output_kinds(["probs=multitask"]))
    report = measure_drift({"probs": probs}, {"probs": got}, kinds, DriftBudget())
    assert report.holds
    record = report.outputs["probs"]
    assert record["kind"] == "multitask" and record["task_agreement_worst"] == pytest.approx(0.997)
    clear = probs.size - record["label_ties"]  # the decisions FP32 makes farther than 0.02 from 0.5
    assert record["label_set_agreement"] == pytest.approx(0.94)
    assert record["decision_agreement"] == pytest.approx(1 - 60 / clear)
    assert record["task_agreements"] == pytest.approx([0.997] * TASKS)
    # the worst task missing its budget is refused, naming the task and the cut
    got[500:520, 7] = 1.0 - probs[500:520, 7]
    report = measure_drift({"probs": probs}, {"probs": got}, kinds, DriftBudget())
    ties = report.outputs["probs"]["label_ties"]
    assert [v.line("multitask") for v in report.violations] == [
        "output 'probs' (multitask): worst task's decision agreement (task 7 of 20, at --label-threshold 0.5; "
        f"{ties} decisions within 0.02 of it left out) 0.979 < budget 0.99"  # 2 of the 20 flips near-ties
    ]
    # a worst task seen on too few rows to show the budget is said so, as other agreement rates are: 0.995 on 600
    probs, got = _spread_flips()
    report = measure_drift({"probs": probs[:600]}, {"probs": got[:600]}, kinds, DriftBudget())
    assert report.holds
    assert [entry["metric"] for entry in thin_evidence(report, DriftBudget(), 600)] == ["task_agreement_worst"]


def test_multitask_is_never_inferred_and_refuses_what_is_not_tasks() -> None:
    probs, _ = _spread_flips()
    assert infer_output_kinds({"probs": probs}, sigmoid={"probs"}) == {"probs": "multilabel"}
    with pytest.raises(QuantserveError, match=r"^--output-kind p=multitask: output 'p' \(float32, shape \(1000, 1\)\)"):
        infer_output_kinds({"p": probs[:, :1]}, {"p": "multitask"})


def _assay_head(path: Path, rng: np.random.Generator) -> Path:
    """x (N, 64) -> Relu(x·W2)·W + b -> Sigmoid: TASKS assays, each offset from 0.5 so that few rows lie near it."""
    weights = {
        "W2": rng.normal(0.0, 0.25, (64, 64)),
        "W": rng.normal(0.0, 0.35, (64, TASKS)),
        "b": 9.0 * np.where(np.arange(TASKS) % 2, 1.0, -1.0),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W2"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "assays",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", TASKS])],
        [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_optimize_ships_the_tasks_typed_multitask_recording_each(tmp_path: Path) -> None:
    """The pipeline's wiring, typed kind to manifest: each task's decision agreement recorded as computed here from
    the files it wrote (FP32 and the shipped model run on the held-out rows, as the verdict's batches held them), the
    worst task the headline. No count of flips is asserted: a real INT8 build's flips near 0.5 move with the CPU's
    kernels (4 of 1200 on the worst task in session 60, against the default budget's 12), so the budget is loose
    enough that any CPU's build ships; the refusal naming the kind is shown on made-up flips above."""
    rng = np.random.default_rng(1)
    model = _assay_head(tmp_path / "assays.onnx", rng)
    held_out = rng.normal(0.0, 1.0, (1200, 64)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0.0, 1.0, (400, 64)).astype(np.float32))
    np.savez(tmp_path / "eval.npz", x=held_out)
    untimed, loose = SpeedSettings(enabled=False), DriftBudget(min_top1_agreement=0.9)
    paths = (model, tmp_path / "calib.npz", "int8", "embedded", tmp_path / "tasks")
    built = optimize(
        OptimizeOptions(*paths, eval_path=tmp_path / "eval.npz", speed=untimed, budget=loose, output_kinds=TYPED)
    )
    verification = built.manifest.verification or {}
    record = verification["outputs"]["probs"]
    judged_at = verification.get("judged_at", f"batches of {VERIFY_BATCH} in order")
    scores = _run(model, held_out, VERIFY_BATCH)[judged_at]
    tied = np.abs(scores - 0.5) <= 0.02  # FP32's near-ties: read as kept, their rows counted (`optimizer.label_sets`)
    by_hand = ((_run(built.path, held_out, VERIFY_BATCH)[judged_at] >= 0.5) == (scores >= 0.5)) | tied
    shares = by_hand.mean(axis=0)
    assert record["kind"] == "multitask" and record["task_agreements"] == pytest.approx(list(shares), abs=1e-12)
    assert record["task_agreement_worst"] == pytest.approx(shares.min(), abs=1e-12)
    assert shares[record["task_worst"]] == shares.min()
    assert built.manifest.extra["typed_kinds"] == TYPED  # deploy records it for evaluate


TYPED = {"probs": "multitask"}


def _run(path: Path, x: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """The model's scores over `x` at each batch composition the verification runs (`optimizer.verify`), by name."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def batched(rows: np.ndarray, size: int) -> np.ndarray:
        return np.concatenate([session.run(None, {"x": rows[i : i + size]})[0] for i in range(0, len(rows), size)])

    order = np.random.default_rng(0).permutation(len(x))
    return {
        f"batches of {batch} in order": batched(x, batch),
        f"batches of {batch} shuffled": batched(x[order], batch)[np.argsort(order)],
        "each row alone": batched(x, 1),
    }

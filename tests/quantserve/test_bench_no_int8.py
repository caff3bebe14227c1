"""`quantserve bench --model` on a model optimize builds no INT8 for: the FP32 rows measured, the INT8 rows recorded
as not measured with optimize's refusal as the reason.

The model is a token classifier (int64 ids → Gather → masked mean → MatMul to logits): its only MatMul feeds the
graph output, so every compute node is kept FP32 and optimize refuses ("no INT8 model to ship"). Before, the bench
stopped on that line with exit 1, no bench.json and no row measured. Nothing here asserts a speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFUSAL = "no INT8 model to ship: every compute node is kept FP32 (1 node excluded: "
VOCAB, WIDTH, CLASSES, LENGTH = 100, 32, 3, 16


def write_token_model(folder: Path) -> tuple[Path, Path]:
    """The token classifier as ONNX, and 128 requests of ids with their attention masks."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    consts = {
        "E": rng.normal(size=(VOCAB, WIDTH)).astype(np.float32),
        "W": (rng.normal(size=(WIDTH, CLASSES)) / np.sqrt(WIDTH)).astype(np.float32),
        "last": np.array([-1], np.int64),
        "seq": np.array([1], np.int64),
        "one": np.array([1.0], np.float32),
    }
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "last"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "seq"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["mask", "seq"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["total", "count1"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", LENGTH]) for n in ("input_ids", "attention_mask")
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])
    initializers = [numpy_helper.from_array(value, name) for name, value in consts.items()]
    graph = helper.make_graph(nodes, "tok", inputs, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(folder / "tok.onnx"))
    ids = rng.integers(0, VOCAB, size=(128, LENGTH)).astype(np.int64)
    mask = (np.arange(LENGTH)[None, :] < rng.integers(4, LENGTH + 1, size=128)[:, None]).astype(np.int64)
    np.savez(folder / "req.npz", input_ids=ids, attention_mask=mask)
    return folder / "tok.onnx", folder / "req.npz"


def test_a_refused_int8_build_is_recorded_and_no_older_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builds faked (optimize's refusal raised for INT8): the record, the line, and a stale INT8 folder gone."""
    from optimizer.drift_budget import BudgetExceeded
    from quantserve.cli import bench_user
    from quantserve.cli.bench_user import UserModelSpec, prepare_user

    model, data = write_token_model(tmp_path)
    refusal = f"{REFUSAL}graph outputs and mixed-range tensors); nothing written: deploy fp32"

    def build(name: str, options: Any, fresh: bool, say: Any) -> tuple[Path, dict[str, Any]]:
        if options.precision == "int8":
            raise BudgetExceeded(refusal)
        return Path(options.out_dir), {"path": str(options.out_dir)}

    monkeypatch.setattr(bench_user, "build", build)
    stale = tmp_path / "build" / "int8"
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text("{}")  # an older model's INT8 build: never to be reused for this one
    said: list[str] = []
    prepared = prepare_user(UserModelSpec(str(model), data), tmp_path / "build", said.append)
    assert list(prepared.builds) == ["fp32"] and not stale.exists()
    assert prepared.records["int8"] == {"path": str(stale), "refused": refusal, "reused": False}
    assert f"tok: no INT8 build: {refusal}; rows 3 and 5 (INT8) are recorded as not measured" in said


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_measures_the_fp32_rows_and_records_the_int8_rows_as_refused(tmp_path: Path) -> None:
    from quantserve.cli.bench_markdown import render

    model, data = write_token_model(tmp_path)
    argv = [sys.executable, "-m", "quantserve", "bench", "--model", str(model), "--data", str(data), "--quick"]
    argv += ["--json", "--out", str(tmp_path / "out"), "--build", str(tmp_path / "build")]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]  # a partial table exits 0, as row 1's absence does
    document = json.loads(result.stdout)
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == document
    bench = document["models"]["tok"]
    rows = {row["row"]: row for row in bench["rows"]}
    refusal = bench["builds"]["int8"]["refused"]
    assert refusal.startswith(REFUSAL), refusal
    for number in (3, 5):
        assert rows[number]["not_measured"] == refusal and rows[number]["saturation_samples_per_s"]["runs"] == []
    for number in (2, 4):
        assert rows[number]["not_measured"] is None and rows[number]["concurrent_samples_per_s"]["median"] > 0
    assert bench["ratios"]["3/2"]["not_measured"] == f"row 3 not measured: {refusal}"
    assert bench["ratios"]["5/4"]["value"] is None and bench["compute"] is None
    markdown = render(document)
    assert f"| 3 | ONNX Runtime INT8 | not measured: {refusal} |" in markdown and "nan" not in markdown.lower()
    assert "| 3/2 | – |  | INT8 over FP32 in ONNX Runtime" in markdown

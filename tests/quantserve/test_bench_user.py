"""`quantserve bench --model MODEL --data REQUESTS.npz`: the bench's five rows on the user's own model.

Real components throughout (optimize, ONNX Runtime, torch, tritonserver, Locust) on two small MLPs: one
as an ONNX file (no PyTorch form: row 1 recorded as not measured, with its reason) and one as a
torch.export program (row 1 measured). Nothing here asserts a speed.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("saturation_samples_per_s", "concurrent_samples_per_s", "p50_ms", "p99_ms")
NO_EAGER = "an ONNX model has no PyTorch form"


def write_mlp_onnx(path: Path, seed: int = 0) -> Path:
    """Gemm(16→32) → Relu → Gemm(32→10) with a dynamic batch axis; weights drawn by `seed`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {"w1": rng.normal(0, 0.3, (16, 32)), "b1": np.zeros(32), "w2": rng.normal(0, 0.3, (32, 10))}
    weights["b2"] = np.zeros(10)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"])]
    nodes.append(helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"]))
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(array.astype(np.float32), name) for name, array in weights.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_mlp_pt2(path: Path) -> Path:
    """The same MLP in PyTorch, saved as a torch.export program with a dynamic batch axis (its input: `input`)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(module, (torch.zeros(2, 16),), dynamic_shapes=({0: batch},)), str(path))
    return path


def write_requests(path: Path, name: str, columns: int = 16) -> Path:
    np.savez(path, **{name: np.random.default_rng(1).normal(size=(64, columns)).astype(np.float32)})
    return path


def run_bench(tmp: Path, *flags: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "quantserve", "bench", *flags, "--quick", "--json"]
    argv += ["--out", str(tmp / "out"), "--build", str(tmp / "build")]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert json.loads((tmp / "out" / "bench.json").read_text()) == document  # --json prints what bench.json holds
    return document


@pytest.fixture(scope="module")
def onnx_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("bench_onnx")
    model, data = write_mlp_onnx(tmp / "tiny mlp.onnx"), write_requests(tmp / "requests.npz", "x")
    # requests of 17 samples: more than the fixed config's max batch of 16 (which refused every one of row 5's)
    return run_bench(tmp, "--model", str(model), "--data", str(data), "--request-batch", "17"), tmp


@pytest.mark.e2e
@pytest.mark.slow
def test_an_onnx_model_gets_rows_2_to_5_and_row_1_recorded_as_not_measured(
    onnx_bench: tuple[dict[str, Any], Path],
) -> None:
    document = onnx_bench[0]
    assert list(document["models"]) == ["tiny_mlp"]  # the file's stem, as a safe name
    model = document["models"]["tiny_mlp"]
    rows = {row["row"]: row for row in model["rows"]}
    assert rows[1]["not_measured"] == NO_EAGER and rows[1]["saturation_samples_per_s"]["runs"] == []
    assert all(rows[1][figure]["median"] is None for figure in FIGURES)  # null, never NaN or a made-up figure
    for number in (2, 3, 4, 5):
        assert rows[number]["not_measured"] is None
        for figure in FIGURES:
            assert len(rows[number][figure]["runs"]) == 1 and rows[number][figure]["median"] > 0, (number, figure)
    ratios = model["ratios"]
    assert ratios["5/1"]["value"] is None and ratios["5/1"]["not_measured"] == f"row 1 not measured: {NO_EAGER}"
    for key, (top, bottom, figure) in {"5/4": (5, 4, "concurrent"), "3/2": (3, 2, "saturation")}.items():
        name = f"{figure}_samples_per_s"
        assert ratios[key]["value"] == pytest.approx(rows[top][name]["median"] / rows[bottom][name]["median"])
    assert model["source"]["kind"] == "onnx" and model["source"]["calib"] is None
    assert any("measured on the requests themselves" in note for note in model["source"]["notes"])
    assert document["settings"]["command"].startswith("quantserve bench --model ")
    assert model["request_batch"] == 17 and model["tune"]["source"].startswith("fixed dynamic batching")


@pytest.mark.e2e
@pytest.mark.slow
def test_the_tables_show_the_missing_row_and_ratio_without_nan(onnx_bench: tuple[dict[str, Any], Path]) -> None:
    from rich.console import Console

    from quantserve.cli.bench_markdown import render
    from quantserve.cli.commands.bench import print_bench

    console = Console(record=True, width=200)
    print_bench(onnx_bench[0], console)
    text, markdown = console.export_text(), render(onnx_bench[0])
    assert f"row 1 not measured: {NO_EAGER}" in text and f"not taken: row 1 not measured: {NO_EAGER}" in text
    assert f"not measured: {NO_EAGER}" in markdown and "nan" not in (text + markdown).lower()


@pytest.mark.e2e
@pytest.mark.slow
def test_a_torch_export_program_gets_all_five_rows(tmp_path: Path) -> None:
    model, data = write_mlp_pt2(tmp_path / "mlp.pt2"), write_requests(tmp_path / "requests.npz", "input")
    document = run_bench(tmp_path, "--model", str(model), "--data", str(data), "--name", "my-mlp")
    bench = document["models"]["my-mlp"]
    for row in bench["rows"]:
        assert row["not_measured"] is None
        assert all(row[figure]["median"] > 0 for figure in FIGURES), row["key"]
    assert bench["rows"][0]["key"] == "torch_eager_fp32"
    assert bench["ratios"]["5/1"]["value"] > 0 and "not_measured" not in bench["ratios"]["5/1"]


def outputs(model: Path, data: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": np.load(data)["x"]})[0])


@pytest.mark.slow
def test_the_same_model_reuses_its_builds_and_a_changed_one_is_rebuilt(tmp_path: Path) -> None:
    from quantserve.cli.bench_user import UserModelSpec, prepare_user

    model, data = write_mlp_onnx(tmp_path / "mlp.onnx"), write_requests(tmp_path / "requests.npz", "x")
    spec, root = UserModelSpec(str(model), data), tmp_path / "build"
    first = prepare_user(spec, root, print)
    again = prepare_user(spec, root, print)
    assert [r["reused"] for r in first.records.values()] == [False, False]
    assert [r["reused"] for r in again.records.values()] == [True, True]
    write_mlp_onnx(model, seed=1)  # new weights in the same file: served stale before a rebuild
    changed = prepare_user(spec, root, print)
    assert [r["reused"] for r in changed.records.values()] == [False, False]
    np.testing.assert_allclose(outputs(root / "fp32" / "fp32.onnx", data), outputs(model, data), rtol=1e-4, atol=1e-5)


@pytest.mark.e2e
@pytest.mark.slow
def test_an_int8_build_over_its_drift_budget_is_said_and_marked(
    tmp_path: Path, onnx_bench: tuple[dict[str, Any], Path]
) -> None:
    """A real INT8 build kept over an impossible budget (cosine 1.0): the note names the miss; both tables mark it."""
    from rich.console import Console

    from optimizer.drift_budget import DriftBudget
    from quantserve.cli.bench_build import build
    from quantserve.cli.bench_markdown import model_section
    from quantserve.cli.bench_results import int8_budget_note
    from quantserve.cli.bench_user import UserModelSpec, load_user_model, user_options
    from quantserve.cli.commands.bench import print_model

    spec = UserModelSpec(str(write_mlp_onnx(tmp_path / "mlp.onnx")), write_requests(tmp_path / "r.npz", "x"))
    model = load_user_model(spec)
    strict = DriftBudget(min_cosine_mean=1.0, min_cosine_worst=1.0)
    options = user_options(model, "int8", tmp_path / "int8")
    options = dataclasses.replace(options, output_kinds={"logits": "embedding"}, budget=strict)
    record = build(model.name, options, True, print)[1]
    note = int8_budget_note(record)
    assert record["drift_holds"] is False and note is not None
    assert note.startswith("INT8 misses its drift budget (output 'logits': cosine")
    assert note.endswith("its rows are timed, but this INT8 build is not one optimize would ship")
    assert int8_budget_note({**record, "drift_holds": True, "search_speedup": 2.0}) is None  # holds, and not slow
    marked = {**onnx_bench[0]["models"]["tiny_mlp"], "int8_budget_note": note}
    console = Console(record=True, width=500)  # the note, with its scheme and speeds, on one line
    print_model("tiny_mlp", marked, console)
    text, markdown = console.export_text(), "\n".join(model_section("tiny_mlp", marked))
    for shown in (text, markdown):
        assert "ONNX Runtime INT8 †" in shown and "Triton INT8 tuned †" in shown and f"† {note}" in shown
        assert "ONNX Runtime FP32 †" not in shown


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "{tmp}/missing.onnx", "--data", "{tmp}/r.npz"], "{tmp}/missing.onnx: model file not found"),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/wrong_names.npz"],
            "{tmp}/wrong_names.npz: arrays ['y'] do not match the model inputs ['x']",
        ),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/r.npz", "--heldout", "{tmp}/wrong_shape.npz"],
            "{tmp}/wrong_shape.npz: input 'x' has shape (64, 12), the model expects ['batch', 16]",
        ),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/r.npz", "--models", "cnn"],
            "--model benches your model alone; drop --models (or --model for the built-in ones)",
        ),
        (
            ["--model", "{tmp}/mlp.onnx"],
            "--model needs --data REQUESTS.npz: the requests every row sends, one array per input",
        ),
        (["--data", "{tmp}/r.npz", "--name", "x"], "--data, --name describe your own model: give --model MODEL too"),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/r.npz", "--name", "a b"],
            "--name 'a b': use up to 117 letters, digits, '_', '.', '-', starting with a letter or digit (bench "
            "deploys it as NAME_fp32_naive, a Triton model)",
        ),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/r.npz", "--name", "m" * 118],
            f"--name {'m' * 118!r}: use up to 117 letters, digits, '_', '.', '-', starting with a letter or digit "
            "(bench deploys it as NAME_fp32_naive, a Triton model)",
        ),
        (
            ["--model", "{tmp}/mlp.onnx", "--data", "{tmp}/r.npz", "--request-batch", "0"],
            "--request-batch must be at least 1, got 0",
        ),
    ],
)
def test_wrong_input_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    from quantserve.cli import main

    write_mlp_onnx(tmp_path / "mlp.onnx")
    write_requests(tmp_path / "r.npz", "x")
    write_requests(tmp_path / "wrong_names.npz", "y")
    write_requests(tmp_path / "wrong_shape.npz", "x", columns=12)
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    assert main(["bench", *argv, "--out", str(tmp_path / "out"), "--build", str(tmp_path / "build")]) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: {message.format(tmp=tmp_path)}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "build").exists()

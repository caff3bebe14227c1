"""An answer of another dtype or width than the model's config declares is refused in one line naming the output,
its rows and both (`serving.declared_outputs`).

A hand-edited model.py answering `probs` as float64 (config TYPE_FP32) for some rows: `infer --batch-size 1` saved
the float64 array and exited 0, and `evaluate` passed; answering it [1, 3] (config dims [4]) stopped both with
"cannot be joined along the batch axis", naming no request and reading as if the width might vary.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from quantserve.data import TensorData
from serving.declared_outputs import DeclaredOutput, array_mismatch, declared_outputs, wire_mismatch
from serving.server import TritonServer

ANSWER = "np.ascontiguousarray(per_request[name])"
MARKED_ROW = 10  # 0-based: the one row the broken models answer wrongly (rows 9–16 at --batch-size 8)
WRONG = {  # the deployed Python backend's answer to a request holding the marked row, output by output
    "wide": "answer.astype('float64') if name == 'probs' else answer",
    "narrow": "answer[:, :3] if name == 'probs' else answer",
}
CONFIG = {
    "max_batch_size": 8,
    "output": [
        {"name": "probs", "data_type": "TYPE_FP32", "dims": ["4"]},
        {"name": "label", "data_type": "TYPE_INT64", "dims": ["1"], "reshape": {"shape": []}},
        {"name": "text", "data_type": "TYPE_STRING", "dims": ["-1"]},
    ],
}


@dataclass
class Served:
    server: TritonServer
    data: Path


def _answer_wrongly(model_dir: Path, wrong: str, mark: float) -> None:
    """The deployed model.py answers `wrong` to each request whose rows include the one whose x[:, 0] is `mark`."""
    model_py = model_dir / "1" / "model.py"
    text = model_py.read_text()
    assert ANSWER in text and "for (i, _), per_request in" in text
    text = text.replace("for (i, _), per_request in", "for (i, sent), per_request in")
    text = text.replace(ANSWER, "np.ascontiguousarray(_wrong(name, per_request[name], sent))")
    model_py.write_text(
        f"{text}\n\ndef _wrong(name, answer, sent):\n    return ({wrong}) if (sent['x'][:, 0] == {mark!r}).any() "
        "else answer\n"
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]) -> Served:
    """`right`, `wide` (float64 probs for the marked row's request) and `narrow` (probs [n, 3] for it) of the dense
    model (x [batch, 8] → probs [batch, 4], label [batch] served as dims [1]), max_batch_size 8."""
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("answers")
    build = make_build_dir(root / "build")
    x = np.random.default_rng(4).normal(size=(32, 8)).astype(np.float32)
    data = TensorData({"x": x}, np.arange(32) % 4).save(root / "data.npz")
    for name in ("right", *WRONG):
        deploy(build, root / "repo", name, max_batch=8, instances=1)
    for name, wrong in WRONG.items():
        _answer_wrongly(root / "repo" / name, wrong, float(x[MARKED_ROW, 0]))
    return Served(triton_server_factory(root / "repo"), data)


def _error(served: Served, model: str, rows: str, answered: str, wrong: str) -> str:
    return (
        f"quantserve: error: {served.server.grpc_url}: model '{model}': output 'probs' of {rows} answered {answered}; "
        f"the model declares FP32 [-1, 4]: the model's execute returns a wrong {wrong}\n"
    )


def _infer(served: Served, model: str, *flags: str) -> int:
    return main(["infer", "--url", served.server.grpc_url, "--model", model, "--data", str(served.data), *flags])


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("batch", "rows", "shape"), [("8", "rows 9–16", "[8, 4]"), ("1", f"row {MARKED_ROW + 1}", "[1, 4]")]
)
def test_infer_refuses_an_answer_of_another_dtype_naming_its_rows(
    served: Served, batch: str, rows: str, shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.npz"
    assert _infer(served, "wide", "--batch-size", batch, "--out", str(out)) == 2
    captured = capsys.readouterr()
    assert captured.err == _error(served, "wide", rows, f"float64 {shape}", "type")
    assert captured.out == "" and not out.exists()


@pytest.mark.e2e
def test_infer_refuses_an_answer_of_another_width_naming_its_rows(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _infer(served, "narrow", "--batch-size", "8") == 2
    assert capsys.readouterr().err == _error(served, "narrow", "rows 9–16", "float32 [8, 3]", "shape")


@pytest.mark.e2e
def test_the_right_model_passes_its_reshaped_output_included(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _infer(served, "right", "--batch-size", "8") == 0
    assert capsys.readouterr().out.startswith("probs: float32 [32, 4]\nlabel: int64 [32]\n")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("model", "answered", "wrong"), [("wide", "float64 [8, 4]", "type"), ("narrow", "float32 [8, 3]", "shape")]
)
def test_evaluate_refuses_the_wrong_answer(
    served: Served, model: str, answered: str, wrong: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--url", served.server.grpc_url, "--models", model, "--reference", "right"]
    assert main([*argv, "--data", str(served.data), "--out", str(tmp_path / "eval"), "--batch-size", "8"]) == 2
    assert capsys.readouterr().err.endswith(_error(served, model, "rows 9–16", answered, wrong))


def test_the_declared_outputs_are_the_configs_served_dims_with_the_batch_axis() -> None:
    assert declared_outputs(CONFIG) == {
        "probs": DeclaredOutput("probs", "FP32", (-1, 4)),
        "label": DeclaredOutput("label", "INT64", (-1, 1)),
        "text": DeclaredOutput("text", "BYTES", (-1, -1)),
    }
    assert declared_outputs({**CONFIG, "max_batch_size": 0})["probs"].shape == (4,)


def test_an_answer_on_the_wire_is_named_in_what_differs_only() -> None:
    declared = declared_outputs(CONFIG)

    def output(name: str, datatype: str, shape: list[int]) -> types.SimpleNamespace:
        return types.SimpleNamespace(name=name, datatype=datatype, shape=shape)

    right = [output("probs", "FP32", [2, 4]), output("label", "INT64", [2, 1]), output("text", "BYTES", [2, 7])]
    assert wire_mismatch(declared, right) is None
    said = "answer did not match the model's outputs: 'probs' "
    assert wire_mismatch(declared, [output("probs", "FP64", [2, 4])]) == f"{said}float64, declared FP32"
    assert wire_mismatch(declared, [output("probs", "FP32", [1, 3])]) == f"{said}[1, 3], declared [-1, 4]"
    assert wire_mismatch(declared, [output("probs", "FP16", [4])]) == f"{said}float16 [4], declared FP32 [-1, 4]"


def test_a_decoded_answer_is_held_to_the_same_rule() -> None:
    declared = declared_outputs(CONFIG)
    right = {"probs": np.zeros((2, 4), np.float32), "text": np.array([[b"a"], [b"b"]], dtype=object)}
    assert array_mismatch(declared, right, "rows 1–2") is None
    assert array_mismatch(declared, {"probs": np.zeros((2, 3), np.float64)}, "rows 1–2") == (
        "output 'probs' of rows 1–2 answered float64 [2, 3]; the model declares FP32 [-1, 4]: the model's execute "
        "returns a wrong type and shape"
    )

"""Example inputs bound to `forward`'s parameters by name (session 41): a factory returning {"b": …, "a": …} for
forward(a, b) was exported with the two swapped (the exporter passes them by position) and shipped at chance
accuracy, exit 0; and the hint for data naming none of a tuple example's inputs suggested the names sorted, which
for forward(b, a) swapped them too."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from quantserve.cli import main

FACTORIES = """
import torch


class Diff(torch.nn.Module):
    def forward(self, a, b, scale=None, shift=None):
        out = a - 2 * b
        return out if scale is None else out * scale


class Gap(torch.nn.Module):
    def forward(self, a, mask=None, kind=None):
        return a if kind is None else a + kind


def named_ba():
    return Diff(), {"b": torch.ones(1, 3), "a": torch.zeros(1, 3)}


def tuple_ba():
    class BA(torch.nn.Module):
        def forward(self, b, a):
            return a - 2 * b
    return BA(), (torch.ones(1, 3), torch.zeros(1, 3))


def unknown_key():
    return Diff(), {"c": torch.ones(1, 3), "a": torch.ones(1, 3)}


def gap():
    return Gap(), {"a": torch.ones(1, 3), "kind": torch.ones(1, 3)}


def missing():
    return Diff(), {"a": torch.ones(1, 3)}


class Both(torch.nn.Module):
    def forward(self, a):
        return {"logits": a * 2, "emb": torch.relu(a)}


def dict_out():
    return Both(), (torch.ones(1, 3),)


def options_list():
    return Both(), (torch.ones(1, 3),), [("output_names", ["x", "y"])]


def three_names():
    return Both(), (torch.ones(1, 3),), {"output_names": ["x", "y", "z"]}
"""


@pytest.fixture
def factories(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "s41_forward_factories.py").write_text(FACTORIES)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("s41_forward_factories", None)


def _data(folder: Path, **arrays: np.ndarray) -> Path:
    path = folder / "data.npz"
    np.savez(path, **arrays)
    return path


def test_a_dict_of_examples_feeds_each_to_its_parameter(factories: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((40, 3)).astype(np.float32) for _ in range(2))
    data = _data(factories, a=a, b=b)
    out = factories / "build"
    argv = ["optimize", "s41_forward_factories:named_ba", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    [answer] = session.run(None, {"a": a, "b": b})
    np.testing.assert_allclose(answer, a - 2 * b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("factory", "line"),
    [
        ("unknown_key", "example input 'a' is passed by position to forward(a, b, scale, shift)'s 'b'"),
        ("gap", "leave out forward(a, mask, kind)'s ['mask'] before 'kind'"),
        ("missing", "no example input for forward(a, b, scale, shift)'s ['b']"),
        ("options_list", "the factory's third item (options) is a list; expected a dict"),
    ],
)
def test_examples_position_cannot_bind_are_refused(
    factory: str, line: str, factories: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(factories, a=np.ones((40, 3), np.float32))
    argv = ["optimize", f"s41_forward_factories:{factory}", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--out", str(factories / "build")]) == 2
    assert line in capsys.readouterr().err
    assert not (factories / "build").exists()


def test_the_names_hint_follows_forward(factories: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(factories, a=np.ones((40, 3), np.float32), b=np.ones((40, 3), np.float32))
    argv = ["optimize", "s41_forward_factories:tuple_ba", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--out", str(factories / "build")]) == 2
    assert "name them with --input-names b,a (forward's order)" in capsys.readouterr().err


def test_a_dict_of_outputs_keeps_its_keys_as_names(factories: Path) -> None:
    a = np.random.default_rng(1).standard_normal((40, 3)).astype(np.float32)
    data = _data(factories, input=a)
    out = factories / "build"
    argv = ["optimize", "s41_forward_factories:dict_out", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "emb"]
    logits, emb = session.run(None, {"input": a})
    np.testing.assert_allclose(logits, a * 2, rtol=1e-6)
    np.testing.assert_allclose(emb, np.maximum(a, 0), rtol=1e-6)


def test_output_names_not_one_per_output_are_refused(factories: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(factories, input=np.ones((40, 3), np.float32))
    argv = ["optimize", "s41_forward_factories:three_names", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--out", str(factories / "build")]) == 2
    assert "3 output names ['x', 'y', 'z'] for the model's 2 output(s)" in capsys.readouterr().err


def test_a_name_given_twice_is_refused(factories: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(factories, a=np.ones((40, 3), np.float32))
    argv = ["optimize", "s41_forward_factories:tuple_ba", "--calib", str(data), "--precision", "fp32"]
    assert main([*argv, "--input-names", "a,a", "--out", str(factories / "build")]) == 2
    assert "--input-names a,a: names ['a'] more than once; one name per tensor" in capsys.readouterr().err

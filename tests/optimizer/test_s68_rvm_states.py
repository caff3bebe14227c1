"""Robust Video Matting's recurrent states are named r1i..r4i in and r1o..r4o out (its official ONNX export and
human-models' rvm, probe 68L): none paired by name, and with four shape-matched pairs the one-pair guess took none,
so the states were judged as answers, with no closed loop and no word of --state. They now pair by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import helper
from test_state_loop import _save

from optimizer.state_loop import StatePair, find_state_pairs, names_pair


@pytest.mark.parametrize(
    ("output", "input_name", "paired"),
    [("r1o", "r1i", True), ("r4o", "r4i", True), ("r1o", "r2i", False), ("io", "ii", False), ("pho", "phi", False)],
)
def test_rvm_state_names_pair(output: str, input_name: str, paired: bool) -> None:
    assert names_pair(output, input_name) is paired


def test_rvm_like_states_are_found(tmp_path: Path) -> None:
    sizes = {1: 16, 2: 20, 3: 40, 4: 64}
    nodes = [helper.make_node("Relu", ["src"], ["pha"])]
    nodes += [helper.make_node("Add", [f"r{i}i", f"r{i}i"], [f"r{i}o"]) for i in sizes]
    inputs = [("src", ["N", 8])] + [(f"r{i}i", ["N", size]) for i, size in sizes.items()]
    outputs = [("pha", ["N", 8])] + [(f"r{i}o", ["N", size]) for i, size in sizes.items()]
    model = _save(tmp_path / "rvm.onnx", nodes, inputs, outputs, {})
    assert find_state_pairs(model) == [StatePair(f"r{i}o", f"r{i}i") for i in sizes]

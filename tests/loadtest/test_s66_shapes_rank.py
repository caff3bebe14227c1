"""NAME__shapes beside an output padded to the longest (a decoder's [1, T, 50] per request) held each request's shape,
[1, 24, 50], while the padded array's rows are the samples, (48, 429, 50): the slice a metric reads its own answer by,
`p[i][tuple(slice(0, s) for s in shape)]`, raised "IndexError: too many indices" (probe 66I). Now each row says the
sample's shape in the padded array, of padded[i]'s rank, in evaluate's --metric form and in infer's saved file alike
(one helper, `quantserve.runner.sample_shapes`) (session 66)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from loadtest.request_answers import with_shapes
from quantserve.runner import RequestLog, concat_outputs, sample_shapes


def _log(answers: list[np.ndarray], rows: list[int]) -> RequestLog:
    log = RequestLog()
    for answer, n in zip(answers, rows, strict=True):
        log.record({"x": np.zeros((n, 4), np.float32)}, {"y": answer})
    return log


def _own(padded: np.ndarray, shapes: np.ndarray) -> list[np.ndarray]:
    return [padded[i][tuple(slice(0, s) for s in shape)] for i, shape in enumerate(shapes)]


def test_each_row_is_the_samples_shape_in_the_padded_array() -> None:
    answers = [np.ones((1, t, 5), np.float32) * t for t in (2, 4, 1)]
    padded = concat_outputs([{"y": a} for a in answers], pad=True)["y"]
    shaped = with_shapes({"y": padded}, _log(answers, [1, 1, 1]), ["y"])
    shapes = shaped["y__shapes"]
    np.testing.assert_array_equal(shapes, [[2, 5], [4, 5], [1, 5]])
    own = _own(padded, shapes)
    assert [o.shape for o in own] == [(2, 5), (4, 5), (1, 5)]
    assert all(not np.isnan(o).any() for o in own)


def test_a_request_of_several_samples_gives_a_row_each() -> None:
    answers = [np.ones((2, 3, 5), np.float32), np.ones((1, 6, 5), np.float32)]
    padded = concat_outputs([{"y": a} for a in answers], pad=True)["y"]
    shapes = with_shapes({"y": padded}, _log(answers, [2, 1]), ["y"])["y__shapes"]
    assert len(shapes) == len(padded)
    np.testing.assert_array_equal(shapes, [[3, 5], [3, 5], [6, 5]])


def test_whole_samples_answered_without_a_sample_axis() -> None:
    """A whole sample's (T, 88) answer is made one row (`one_row`): its row in the padded array is (T, 88)."""
    padded = concat_outputs([{"y": a[None]} for a in (np.ones((3, 88)), np.ones((5, 88)))], pad=True)["y"]
    np.testing.assert_array_equal(sample_shapes([(3, 88), (5, 88)], padded.ndim), [[3, 88], [5, 88]])
    np.testing.assert_array_equal(sample_shapes([(1, 3, 8), (1, 5, 8)], 3), [[3, 8], [5, 8]])


def test_infer_saves_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`infer --out` of the same answers saves y__shapes as evaluate hands them to a metric (a fake server)."""
    import quantserve.runner
    import serving.triton_runner
    from quantserve import cli
    from quantserve.cli.commands import infer
    from tests.quantserve.fake_runner import FakeRunner

    answers = [np.ones((1, t, 5), np.float32) for t in (2, 4)]

    def run_batches(runner: Any, batches: Any, whole: bool = False, pad: bool = False) -> dict[str, np.ndarray]:
        for answer in answers:
            runner.log.record({"x": np.zeros((1, 4), np.float32)}, {"y": answer})
        return concat_outputs([{"y": a} for a in answers], pad=pad)

    monkeypatch.setattr(serving.triton_runner, "TritonRunner", FakeRunner)
    data = SimpleNamespace(labels=None, batches=lambda size: [], requests=SimpleNamespace(whole=False))
    monkeypatch.setattr(infer, "served_data", lambda args, runner, model: data)  # no file read, no patched loader
    monkeypatch.setattr(quantserve.runner, "run_batches", run_batches)
    out = tmp_path / "out.npz"
    served = ["infer", "--url", "127.0.0.1:18399", "--model", "m"]
    assert cli.main([*served, "--data", str(tmp_path / "d.npz"), "--out", str(out)]) == 0
    saved = np.load(out)
    np.testing.assert_array_equal(saved["y__shapes"], [[2, 5], [4, 5]])
    assert [o.shape for o in _own(saved["y"], saved["y__shapes"])] == [(2, 5), (4, 5)]

"""`infer` refuses what `loadtest` and `evaluate` refuse, in one line: a --timeout that is no positive number of
seconds (-1 said "no Triton server answers", 0 failed the metadata call with DEADLINE_EXCEEDED), and labels the
model's classes cannot hold (`accuracy: 0.0000`, exit 0, where evaluate refused the same file)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_runner import FakeRunner

from quantserve import cli


def serve_scores(monkeypatch: pytest.MonkeyPatch, labels: np.ndarray, scores: np.ndarray) -> None:
    """A model answering `scores` (samples, classes) for a data file holding `labels`."""
    import quantserve.data
    import quantserve.runner
    import serving.triton_runner

    monkeypatch.setattr(serving.triton_runner, "TritonRunner", FakeRunner)
    data = SimpleNamespace(labels=labels, batches=lambda size: [], requests=SimpleNamespace(whole=False))
    monkeypatch.setattr(quantserve.data, "load_npz", lambda path, specs, **_: data)
    monkeypatch.setattr(
        quantserve.runner, "run_batches", lambda runner, batches, whole=False, pad=False: {"logits": scores}
    )


def infer(tmp_path: Path, *extra: str) -> int:
    data = tmp_path / "d.npz"
    return cli.main(["infer", "--url", "127.0.0.1:1", "--model", "slow", "--data", str(data), *extra])


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_a_timeout_that_is_no_positive_number_of_seconds_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    assert infer(tmp_path, "--timeout", timeout) == 2
    said = f"{float(timeout):g}"
    assert capsys.readouterr().err == f"quantserve: error: --timeout must be a positive number of seconds, got {said}\n"


def test_labels_outside_the_models_classes_are_refused_as_evaluate_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's file: 64 labels of classes 10.. for a model of 4 classes; nothing saved."""
    serve_scores(monkeypatch, np.arange(10, 74), np.eye(4)[np.arange(64) % 4])
    assert infer(tmp_path, "--out", str(tmp_path / "out.npz")) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {tmp_path / 'd.npz'}: array 'labels' has 64 class id(s) outside 0..3, the 4 classes "
        "model 'slow' scores (first: 10 in row 0)\n"
    )
    assert not (tmp_path / "out.npz").exists()


def test_labels_the_classes_hold_still_score_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_scores(monkeypatch, np.array([0, 1, 2, 0]), np.eye(4)[[0, 1, 2, 3]])
    assert infer(tmp_path) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accuracy: 0.7500 on 4 samples"


@pytest.mark.parametrize("seconds", [-1.0, 0.0, math.nan, math.inf, -math.inf])
def test_one_check_refuses_what_infer_loadtest_and_evaluate_refuse(seconds: float) -> None:
    """`quantserve.checks.positive_seconds`: the one check behind infer's --timeout and the --request-timeout of
    loadtest (command and settings) and evaluate; a positive, finite value passes through."""
    from quantserve.checks import positive_seconds
    from quantserve.errors import QuantserveError

    with pytest.raises(QuantserveError) as refused:
        positive_seconds("--request-timeout", seconds)
    assert str(refused.value) == f"--request-timeout must be a positive number of seconds, got {seconds:g}"
    assert positive_seconds("--timeout", 0.25) == 0.25

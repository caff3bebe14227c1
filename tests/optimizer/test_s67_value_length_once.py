"""The value-length INT8 route (`optimize --precision int8 --unbatched` of a decoder whose answer length follows its
values) did its costliest work twice: whether the lengths vary was probed on the exported model before fuse and
again on the fused one before calibrating (each runs the model on up to 32 requests one at a time), and the INT8
candidate was run over every held-out request to verify it, then again to pick the request the speed gate times
(~35 s more on SLANet-plus). One optimize now probes once and runs the candidate over the held-out requests once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer import pipeline, value_length_int8
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.artifact import Manifest
from quantserve.cli import main
from tests.optimizer.test_s66_value_length_int8 import _optimize


def _counted(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[bytes], list[Path]]:
    """How often each request (its bytes) was run on the INT8 candidate, and the models whose lengths were probed,
    over one optimize."""
    runs: Counter[bytes] = Counter()
    probed: list[Path] = []
    infer, probe = OnnxRuntimeRunner.infer, value_length_int8.lengths_vary_per_request

    def counting_infer(self: OnnxRuntimeRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.path.name == "int8.onnx":
            runs[b"".join(np.ascontiguousarray(feeds[name]).tobytes() for name in sorted(feeds))] += 1
        return infer(self, feeds)

    def counting_probe(model: Path, *args: Any) -> bool:
        probed.append(model)
        return probe(model, *args)

    monkeypatch.setattr(OnnxRuntimeRunner, "infer", counting_infer)
    for module in (pipeline, value_length_int8):  # the name as each module reads it
        monkeypatch.setattr(module, "lengths_vary_per_request", counting_probe)
    return runs, probed


def test_one_optimize_probes_once_and_runs_the_candidate_over_the_held_out_requests_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, probed = _counted(monkeypatch)
    assert main(_optimize(tmp_path, False, "--allow-slower")) == 0, capsys.readouterr().err
    record = Manifest.load(tmp_path / "b").verification
    assert record["outputs"]["y"]["kind"] == "per request", record  # the value-length route, judged per request
    assert "speed" in record, record  # the speed gate picked its request from the candidate's answers
    assert len(probed) == 1, probed  # fuse keeps answer shapes: probed once, before fuse
    assert len(runs) >= record["samples"], runs  # every held-out request run on the candidate (and calibration's)
    assert max(runs.values()) == 1, sorted(runs.values())  # none run twice: the speed gate reads verify's answers

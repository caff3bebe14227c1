"""A target whose build records another target's name is refused: deploy lays a build out by its manifest's target
alone, and a plugin delegating to the embedded build (recording `target: embedded`) was deployed as embedded without a
word (session 62; docs/adding-a-target.md says the build records its own name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer import pipeline
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.targets import get_target
from quantserve.artifact import Artifact
from quantserve.errors import QuantserveError


class Delegating:
    """A plugin target that hands its work to the embedded target and forgets to record its own name."""

    name = "mine"
    supports_fp16 = False

    def __init__(self) -> None:
        self.inner = get_target("embedded")

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)

    def build(self, model: Artifact, out_dir: Path) -> Artifact:
        return self.inner.build(model, out_dir)


def test_a_build_recording_another_target_is_refused(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "get_target", lambda name: Delegating())
    with pytest.raises(QuantserveError) as caught:
        optimize(OptimizeOptions(tiny_onnx, None, "fp32", "mine", tmp_path / "out", eval_path=calib_npz))
    assert str(caught.value).startswith(
        "target 'mine' built a model recorded as target 'embedded': deploy would lay it out as 'embedded'"
    ), caught.value
    assert not (tmp_path / "out").exists()

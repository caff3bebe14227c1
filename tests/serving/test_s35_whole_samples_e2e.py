"""End to end: an --unbatched build of whole samples (axis 0 a clip's frames, as madmom's key_cnn takes (T, 144)),
deployed, served by a real tritonserver; `infer` and `evaluate` send each data[i] of an (N, T, F) file whole.

Before: optimize took such data, but the manifest did not say so, deploy served axis 0 as 1 ([1, F]: one frame a
request), and `evaluate` refused the (N, T, F) file."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import REQUESTS, WHOLE_SAMPLES
from quantserve.cli import main
from serving.deploy import deploy
from serving.model_config import parse_config
from serving.server import TritonServer

pytestmark = pytest.mark.e2e

TIME_MAJOR = Path(__file__).resolve().parents[1] / "optimizer" / "test_s35_time_major.py"
SAMPLES, FRAMES = 24, 16


def _time_major() -> ModuleType:
    spec = importlib.util.spec_from_file_location("time_major_models", TIME_MAJOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    models = _time_major()
    root = tmp_path_factory.mktemp("whole")
    model = models._time_major(root / "key.onnx", pooled=True)
    clips = np.random.default_rng(5).standard_normal((SAMPLES * 5, FRAMES, models.FEATURES)).astype(np.float32)
    np.savez(root / "clips.npz", x=clips)
    np.savez(root / "eval.npz", x=clips[:SAMPLES])
    options = OptimizeOptions(
        model,
        root / "clips.npz",
        "fp32",
        "embedded",
        root / "build",
        speed=SpeedSettings(enabled=False),
        unbatched=True,
    )
    assert optimize(options).manifest.extra[REQUESTS] == WHOLE_SAMPLES
    deploy(root / "build", root / "repo", "key")
    return triton_server_factory(root / "repo"), root


def test_deploy_serves_axis_0_as_the_clip_length(served: tuple[TritonServer, Path]) -> None:
    _, root = served
    config = parse_config(root / "repo" / "key" / "config.pbtxt")
    assert int(config.get("max_batch_size", 0)) == 0
    assert [int(d) for d in config["input"][0]["dims"]] == [-1, _time_major().FEATURES]


def test_infer_and_evaluate_send_each_clip_whole(served: tuple[TritonServer, Path]) -> None:
    import onnxruntime as ort

    server, root = served
    out = root / "answers.npz"
    assert main(["-q", "infer", "--url", server.grpc_url, "--model", "key", "--data", str(root / "eval.npz"),
                 "--out", str(out)]) == 0  # fmt: skip
    session = ort.InferenceSession(str(root / "key.onnx"), providers=["CPUExecutionProvider"])
    clips = np.load(root / "eval.npz")["x"]
    expected = np.concatenate([session.run(None, {"x": clip})[0] for clip in clips])  # (1, 3) a clip
    got = np.load(out)["y"]
    assert got.shape == expected.shape == (SAMPLES, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", "key", "--reference", "key"]
    assert main([*argv, "--data", str(root / "eval.npz"), "--out", str(root / "evaluated")]) == 0
    accuracy = json.loads((root / "evaluated" / "accuracy.json").read_text())
    assert '"samples": 24' in json.dumps(accuracy)

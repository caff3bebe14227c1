"""Against a real tritonserver: a load test counts an answer of another dtype or width than the model's config
declares as a failed request, named, and exits 1 (`serving.declared_outputs.wire_mismatch`).

A hand-edited model.py answering `probs` as float64 (config TYPE_FP32) or [1, 3] (dims [4]) for some rows: 4 users
sent 6084 requests, none failed, exit 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_run import LoadRun
from quantserve.cli import main
from quantserve.data import load_npz
from serving.server import TritonServer

pytestmark = pytest.mark.e2e
ANSWER = "np.ascontiguousarray(per_request[name])"
MARKED_ROWS = (3, 17)  # the rows (of 64) the broken models answer wrongly: a few requests of many
WRONG = {  # the deployed Python backend's answer to a request holding a marked row
    "wide": "answer.astype('float64')",
    "narrow": "answer[:, :-1]",
}
SAID = {
    "wide": "'logits' float64, declared FP32",
    "narrow": f"'logits' [1, {models.CLASSES - 1}], declared [-1, {models.CLASSES}]",
}


def _answer_wrongly(model_dir: Path, wrong: str, marks: list[float]) -> None:
    """The deployed model.py answers `wrong` to each request whose rows include one whose x[:, 0] is in `marks`."""
    model_py = model_dir / "1" / "model.py"
    text = model_py.read_text()
    assert ANSWER in text and "for (i, _), per_request in" in text
    text = text.replace("for (i, _), per_request in", "for (i, sent), per_request in")
    text = text.replace(ANSWER, "np.ascontiguousarray(_wrong(per_request[name], sent))")
    model_py.write_text(
        f"{text}\n\ndef _wrong(answer, sent):\n    return ({wrong}) if np.isin(sent['x'][:, 0], {marks!r}).any() "
        "else answer\n"
    )


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """`wide` (float64 logits) and `narrow` (logits one class short) for requests holding a marked row."""
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("wrong"), tuple(WRONG), 8)
    x = load_npz(data).arrays["x"]
    for name, wrong in WRONG.items():
        _answer_wrongly(repo / name, wrong, [float(x[row, 0]) for row in MARKED_ROWS])
    return triton_server_factory(repo), data


@pytest.mark.parametrize("model", sorted(WRONG))
def test_an_answer_unlike_the_models_declared_outputs_is_a_failed_request(
    served: tuple[TritonServer, Path], model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = served
    argv = ["loadtest", "--url", server.grpc_url, "--model", model, "--data", str(data), "--out", str(tmp_path)]
    argv += ["--metrics-url", server.metrics_url, "--users", "2", "--duration", "2s", "--request-batch", "1"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    [step] = LoadRun.load(tmp_path / f"load-{model}.json").results
    assert 0 < step.failed_requests < step.requests, step  # the requests holding a marked row, and only those
    assert list(step.errors) == [f'TritonRequestFailed("answer did not match the model\'s outputs: {SAID[model]}")']
    assert f"answer did not match the model's outputs: {SAID[model]}" in captured.out
    assert "requests failed" in captured.err
    assert np.isclose(step.failed_requests / step.requests, len(MARKED_ROWS) / 64, atol=0.05), step

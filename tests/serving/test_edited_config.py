"""A config.pbtxt edited by hand so that its inputs or outputs are not its model's is not loaded by `serve`.

Against tritonserver 2.51, an input's `dims: 32` edited to `dims: 33` under a running `quantserve serve` was reloaded
("versions [2] live") with no warning, and every request then failed: ONNX Runtime refused the 33-wide ones, Triton
the 32-wide. Now the reload is refused in one line naming the tensor, both shapes and what to do, and the versions
served before keep serving; at start such a model is named like the other folders Triton cannot serve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_supervisor import Serve, serve_command

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.config_check import config_mismatch
from serving.control import ControlClient
from serving.deploy import deploy
from serving.repository import prepare_repository
from serving.server import ServerOptions
from serving.supervisor import Supervisor

NOT_THE_MODEL = "has a config.pbtxt that does not match version 1's model.onnx: "
FIX = "; fix config.pbtxt or redeploy with 'quantserve deploy'"


def edit_config(model_dir: Path, old: str, new: str) -> None:
    config = model_dir / "config.pbtxt"
    text = config.read_text()
    assert old in text, text
    config.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("dims: 8", "dims: 9", "input 'x' has dims [9] in the config, [8] in the model behind the batch axis"),
        (
            "dims: 8",
            "dims: 8\n  dims: 2",
            "input 'x' has dims [8, 2] in the config, [8] in the model behind the batch axis",
        ),
        ('name: "x"', 'name: "features"', "input 'features' is not an input of the model (its inputs: x)"),
        ("TYPE_INT64", "TYPE_INT32", "output 'label' is TYPE_INT32 in the config, int64 in the model"),
        (
            'name: "probs"',
            'name: "scores"',
            "output 'scores' is not an output of the model (its outputs: probs, label)",
        ),
    ],
)
def test_each_edit_that_breaks_requests_is_named_with_what_to_do(
    dense_build: Path, tmp_path: Path, old: str, new: str, problem: str
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    assert config_mismatch(repo / "dense") is None, "as deployed, config and model agree"
    edit_config(repo / "dense", old, new)
    assert config_mismatch(repo / "dense") == NOT_THE_MODEL + problem + FIX


def test_dims_the_model_leaves_open_accept_any_and_unbatched_configs_compare_whole_shapes(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "open", max_batch=8)
    edit_config(repo / "open", "dims: 8", "dims: -1")  # requests of the model's width still work
    assert config_mismatch(repo / "open") is None
    deploy(dense_build, repo, "whole", max_batch=0)  # dims [-1, 8]: no batch axis to skip
    assert config_mismatch(repo / "whole") is None
    edit_config(repo / "whole", "dims: 8", "dims: 7")
    assert (
        config_mismatch(repo / "whole")
        == NOT_THE_MODEL + "input 'x' has dims [-1, 7] in the config, [-1, 8] in the model" + FIX
    )


def test_a_start_refuses_a_mismatched_model_in_one_line_and_a_restart_skips_it(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy(dense_build, repo, "twin", max_batch=8)
    edit_config(repo / "twin", "dims: 8", "dims: 9")
    reason = f"{NOT_THE_MODEL}input 'x' has dims [9] in the config, [8] in the model behind the batch axis{FIX}"
    with pytest.raises(QuantserveError) as refused:
        prepare_repository(repo)
    assert str(refused.value) == f"{repo / 'twin'}: model 'twin' {reason}"
    assert prepare_repository(repo, strict=False) == {"twin": reason}


class FakeControl(ControlClient):
    """A server that serves `versions` of every model until it loads one, then version 1."""

    def __init__(self, versions: list[int]) -> None:
        super().__init__("127.0.0.1:1")
        self.versions, self.loads = versions, 0

    def ready_versions(self, model: str) -> list[int]:
        return self.versions

    def load(self, model: str) -> None:
        self.loads += 1
        self.versions = [1]


@pytest.mark.parametrize(("served", "said"), [([], "loaded"), ([1], "reloaded")])
def test_a_model_loaded_for_the_first_time_is_said_loaded(
    dense_build: Path, tmp_path: Path, served: list[int], said: str
) -> None:
    deploy(dense_build, tmp_path / "repo", "dense", max_batch=8)
    lines: list[str] = []
    supervisor = Supervisor(ServerOptions.on_free_ports(tmp_path / "repo", model_control="explicit"), log=lines.append)
    control = FakeControl(served)
    supervisor._load("dense", control, None)
    assert lines == [f"model 'dense' {said}: versions [1] live"] and control.loads == 1


@pytest.mark.e2e
def test_serve_keeps_the_served_version_when_a_config_edit_breaks_its_interface(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    serve = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log")))
    try:
        serve.wait_for("press Ctrl-C", timeout_s=120)
        edit_config(tmp_path / "repo" / "dense", "dims: 8", "dims: 9")
        line = serve.wait_for("model 'dense' ", timeout_s=30).rstrip("\n")
        reason = f"{NOT_THE_MODEL}input 'x' has dims [9] in the config, [8] in the model behind the batch axis{FIX}"
        assert line == f"model 'dense' not reloaded, versions [1] keep serving: {tmp_path / 'repo' / 'dense'} {reason}"
        data = tmp_path / "x8.npz"
        np.savez(data, x=np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))
        assert main(["infer", "--url", f"127.0.0.1:{ports[0]}", "--model", "dense", "--data", str(data)]) == 0
    finally:
        serve.stop()

"""A model Triton refused before loading it (a config whose name is not its folder's) is named with the reason
Triton's log gives, and the log's path once (session 47: "not loaded, no reason given (log: L) (log: L)")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_states import logged_error, models_not_loaded
from serving.server import TritonServer

MISMATCH = "unexpected directory name 'x' for model 'y', directory name must equal model name"
# The first lines of tritonserver 2.51's log for a repository with 'dense' and folder 'x' whose config says "y".
LOG = (
    'W1205 10:30:03.034638 23160 pinned_memory_manager.cc:273] "Unable to allocate pinned system memory"\n'
    'E1205 10:30:03.034737 23160 server.cc:241] "CudaDriverHelper has not been initialized."\n'
    "E1205 10:30:03.035724 23160 model_repository_manager.cc:1460] "
    f"\"Poll failed for model directory 'x': {MISMATCH}\"\n"
    'I1205 10:30:03.035763 23160 model_lifecycle.cc:472] "loading: dense:1"\n'
    "I1205 10:30:04.393022 23160 model_lifecycle.cc:839] \"successfully loaded 'dense'\"\n"
    'E1205 10:30:04.396401 23160 tritonserver.cc:2607] "Internal: failed to load all models"\n'
)


def test_the_first_error_line_naming_the_model_is_its_reason() -> None:
    assert logged_error(LOG, "x") == f"Poll failed for model directory 'x': {MISMATCH}"
    assert logged_error(LOG, "y") == f"Poll failed for model directory 'x': {MISMATCH}"  # the name its config says
    assert logged_error(LOG, "dense") is None  # named only by info lines
    assert logged_error(LOG.replace("'x'", "'xy'"), "x") is None  # a name is matched whole, as Triton quotes it
    multiline = "E1205 10:30:03.0 1 m.cc:1] \"failed for 'x': first line\\nTraceback (most recent call last):\"\n"
    assert logged_error(multiline, "x") == "failed for 'x': first line"


def test_a_model_with_no_state_and_no_logged_error_says_so_without_the_log_path(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.pbtxt").write_text('name: "x"\nbackend: "python"\n')
    assert models_not_loaded([{"name": "x"}], tmp_path, None, "") == {"x": "not loaded, no reason given"}


@pytest.mark.e2e
def test_a_config_named_unlike_its_folder_fails_with_tritons_reason_and_the_log_once(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "x")
    config = repo / "x" / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "x"', 'name: "y"', 1))  # the model's name, not its input's
    server = triton_server_factory(repo, start=False, model_control="explicit", load_models=("*",))
    with pytest.raises(QuantserveError) as refused:
        server.start()
    message = str(refused.value)
    assert message.startswith(f"model 'x' failed to load: Poll failed for model directory 'x': {MISMATCH} (log: ")
    assert message.count("(log:") == 1

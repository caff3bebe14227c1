"""Each live version's own precision, as deploy records it in the one config.pbtxt all versions share, and the
`m@N` labels that address one version. No server: the served config is read back from the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import DENSE_IO, write_dense_onnx

from quantserve.artifact import Manifest
from quantserve.errors import QuantserveError
from serving.build_parameters import PRECISION_PARAMETER
from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from serving.model_config import CONFIG_NAME, parse_config
from serving.model_version import split_addressed, version_precision
from serving.versions import rollback


def build(directory: Path, precision: str) -> Path:
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    manifest = Manifest("dense", inputs, outputs, precision=precision, target="embedded", files={"model": "model.onnx"})
    manifest.save(directory)
    return directory


def test_two_live_versions_each_show_their_own_precision(tmp_path: Path) -> None:
    """FP32 as version 1, INT8 as version 2, both live: the config's precision is the last deploy's (int8), and
    version 1 was shown as int8."""
    repo, live = tmp_path / "repo", ServingPolicy(live_versions=2)
    deploy(build(tmp_path / "fp32", "fp32"), repo, "m", max_batch=8, policy=live)
    deploy(build(tmp_path / "int8", "int8"), repo, "m", max_batch=8, policy=live)
    config = parse_config(repo / "m" / CONFIG_NAME)
    assert config["parameters"][PRECISION_PARAMETER]["string_value"] == "int8"
    assert version_precision(config, "1", ["1", "2"]) == "fp32"
    assert version_precision(config, "2", ["1", "2"]) == "int8"
    rollback(repo, "m", to=1)  # the config version 1 was deployed with, serving it alone
    assert version_precision(parse_config(repo / "m" / CONFIG_NAME), "1", ["1"]) == "fp32"


def test_a_config_without_the_record_names_no_other_versions_precision() -> None:
    """Deployed before each version's precision was recorded: the config's precision is said only for the one
    version served, never for one of two (it is the last deploy's)."""
    config = {"parameters": {PRECISION_PARAMETER: {"string_value": "int8"}}}
    assert version_precision(config, "1", ["1", "2"]) is None
    assert version_precision(config, "2", ["2"]) == "int8"


def test_labels_address_one_version() -> None:
    assert split_addressed("m@2") == ("m", "2")
    assert split_addressed("m", "3") == ("m", "3") and split_addressed("m@1", "3") == ("m", "1")
    assert split_addressed("m") == ("m", "")
    with pytest.raises(QuantserveError, match="invalid model version 'x'"):
        split_addressed("m@x")

"""tune takes one model's FP32 and INT8 builds: two INT8 builds were tuned with one called "the naive baseline" and
the winner's precision named by a folder; two models' builds failed later on the data's inputs (session 40)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_tune import loadtest_models

from quantserve.cli.commands.tune import build_labels
from quantserve.errors import QuantserveError


def _build(tmp_path: Path, name: str, precision: str, width: int = 8) -> Path:
    models = loadtest_models()
    build = Path(models.make_build_dir(tmp_path / name))
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["precision"] = precision
    if width != 8:
        manifest["inputs"][0]["shape"] = [manifest["inputs"][0]["shape"][0], width]
    (build / "manifest.json").write_text(json.dumps(manifest))
    return build


def test_two_builds_of_one_precision_are_refused(tmp_path: Path) -> None:
    first, second = _build(tmp_path, "a_int8", "int8"), _build(tmp_path, "b_int8", "int8")
    with pytest.raises(QuantserveError) as refused:
        build_labels([first, second])
    assert str(refused.value).startswith(f"{first} and {second} are both int8 builds; tune takes one model's FP32")


def test_two_models_builds_are_refused_naming_their_inputs(tmp_path: Path) -> None:
    fp32, other = _build(tmp_path, "fp32", "fp32"), _build(tmp_path, "other", "int8", width=12)
    with pytest.raises(QuantserveError, match=r"take different inputs \(.* against .*12\]\); tune takes two builds"):
        build_labels([fp32, other])


def test_one_models_fp32_and_int8_builds_are_labelled_by_precision(tmp_path: Path) -> None:
    fp32 = _build(tmp_path, "fp32", "fp32")
    int8 = Path(shutil.copytree(fp32, tmp_path / "int8"))
    manifest = json.loads((int8 / "manifest.json").read_text())
    (int8 / "manifest.json").write_text(json.dumps({**manifest, "precision": "int8"}))
    assert build_labels([fp32, int8]) == {"fp32": fp32, "int8": int8}

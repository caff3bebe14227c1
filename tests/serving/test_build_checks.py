"""deploy checks the build's model file against its manifest before writing anything: the same inputs and outputs
(names, types, ranks, fixed dims), a model file inside the build folder that parses as ONNX, and the bytes the build
recorded (its sha256). Each refusal is one line, exit 2, the repository untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import onnx
import pytest

from quantserve.artifact import MODEL_SHA256, file_sha256
from quantserve.cli import main


def edit_manifest(build: Path, edit: Any) -> None:
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def deploy_refused(build: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "dense"]) == 2
    assert not repo.exists()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


def set_input(field: str, value: Any) -> Any:
    return lambda manifest: manifest["inputs"][0].__setitem__(field, value)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            set_input("shape", ["batch", 16]),
            "input 'x' dim 1 differs: [batch, 16] in the manifest, [batch, 8] in the model file",
        ),
        (
            set_input("shape", ["batch", 1, 8]),
            "input 'x' rank differs: [batch, 1, 8] in the manifest, [batch, 8] in the model file",
        ),
        (set_input("name", "image"), "input 'image' is not an input of the model file (its inputs: x)"),
        (set_input("dtype", "int64"), "input 'x' is int64 in the manifest, float32 in the model file"),
        (lambda m: m["outputs"][1].__setitem__("name", "cls"), "output 'cls' is not an output of the model file"),
        (lambda m: m["inputs"].clear(), "input 'x' of the model file is not in the manifest"),
    ],
)
def test_a_manifest_that_does_not_describe_the_model_file_is_refused(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, problem: str
) -> None:
    """The config is written from the manifest: deployed, a manifest input 16 wide for a model taking 8 made
    every request fail."""
    edit_manifest(dense_build, edit)
    err = deploy_refused(dense_build, tmp_path / "repo", capsys)
    model, manifest = dense_build / "model.onnx", dense_build / "manifest.json"
    assert err.startswith(f"quantserve: error: {model}: does not match {manifest}: {problem}")
    assert err.endswith("; run 'quantserve optimize' again\n")


@pytest.mark.parametrize("model_file", ["manifest.json", "../../x/model.onnx", "/etc/passwd", "notes.txt"])
def test_a_model_file_outside_the_build_or_not_onnx_is_refused(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model_file: str
) -> None:
    """Before: a DecodeError/ParseError traceback, or a file from outside the build copied into the repository."""
    (tmp_path / "x").mkdir()
    shutil.copy(dense_build / "model.onnx", tmp_path / "x" / "model.onnx")
    (dense_build / "notes.txt").write_text("not a model\n")
    edit_manifest(dense_build, lambda manifest: manifest["files"].__setitem__("model", model_file))
    err = deploy_refused(dense_build, tmp_path / "repo", capsys)
    manifest = dense_build / "manifest.json"
    expected = {
        "manifest.json": f"{manifest}: files.model names the manifest itself, not a model file",
        "notes.txt": f"{dense_build / 'notes.txt'}: not a readable ONNX model (DecodeError)",
    }.get(model_file, f"{manifest}: files.model '{model_file}' is not a path inside the build folder")
    assert err.startswith(f"quantserve: error: {expected}")


def test_a_model_file_other_than_the_one_the_build_wrote_is_refused_by_its_hash(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An FP32 model.onnx copied into an INT8 build (same interface) was deployed labelled int8."""
    model = dense_build / "model.onnx"
    edit_manifest(dense_build, lambda manifest: manifest["extra"].__setitem__(MODEL_SHA256, file_sha256(model)))
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "ok"), "--name", "dense"]) == 0
    capsys.readouterr()
    other = onnx.load(str(model))
    other.doc_string = "another model of the same interface"
    onnx.save(other, str(model))
    err = deploy_refused(dense_build, tmp_path / "repo", capsys)
    assert err == (
        f"quantserve: error: {model}: not the model file this build wrote (its sha256 differs from the one in "
        f"{dense_build / 'manifest.json'}); run 'quantserve optimize' again\n"
    )


def test_a_build_without_a_recorded_hash_still_deploys(dense_build: Path, tmp_path: Path) -> None:
    assert "model_sha256" not in json.loads((dense_build / "manifest.json").read_text())["extra"]
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense"]) == 0


def test_optimize_records_the_model_files_hash_and_deploy_refuses_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "assets"))
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "calib-cache"))
    import make_tiny_models

    source = make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx")
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=400)
    build = tmp_path / "build"
    optimize(OptimizeOptions(source, calib, "fp32", "embedded", build, speed=SpeedSettings(enabled=False)))
    model = build / "model.onnx"
    assert json.loads((build / "manifest.json").read_text())["extra"][MODEL_SHA256] == file_sha256(model)
    shutil.copy(source, model)  # another file of the same interface
    err = deploy_refused(build, tmp_path / "repo", capsys)
    assert err.startswith(f"quantserve: error: {model}: not the model file this build wrote")

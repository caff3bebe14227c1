"""Models of 2 GiB or more: saved with their weights in an external file, read from their files by every stage,
deployed with that file, served.

One ONNX protobuf holds at most 2 GiB. Here the size from which a model is saved with external data
(`optimizer.onnx_files.EXTERNAL_AT`, 1 GiB) is lowered to 1 KiB so the tiny CNN takes that path in
seconds; a real 2.2 GB model's run is in BENCHMARKS.md with the command that repeats it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from optimizer import onnx_files
from optimizer.calibrate import CalibrationSettings, cache_key
from optimizer.transformer import run_model
from quantserve.cli import main
from quantserve.data import load_npz
from serving.client import TritonGrpcClient

SMALL = 256  # bytes: every model here counts as large (the tiny CNN holds 884 bytes of weights)


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_files, "EXTERNAL_AT", SMALL)
    monkeypatch.setattr(onnx_files, "INLINE_BELOW", 64)  # its 288-byte conv weight goes out, its 32-byte vectors stay


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _as_published(tiny_onnx: Path, folder: Path) -> Path:
    """The tiny CNN as a large model is published: model.onnx and its weights in model.onnx.data."""
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save(onnx.load(str(tiny_onnx)), str(path), save_as_external_data=True, location="model.onnx.data")
    return path


def test_save_puts_a_large_models_weights_beside_it_and_keeps_them_in_memory(
    tiny_onnx: Path, tmp_path: Path, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = onnx.load(str(tiny_onnx))
    before = _weights(model)
    onnx_files.save(model, tmp_path / "big.onnx")
    size = (tmp_path / "big.onnx.data").stat().st_size
    assert size >= 288
    assert onnx_files.external_files(tmp_path / "big.onnx") == {"big.onnx.data": tmp_path / "big.onnx.data"}
    for name, array in _weights(model).items():  # saving moved them out; save put them back
        np.testing.assert_array_equal(array, before[name])
    for name, array in _weights(onnx.load(str(tmp_path / "big.onnx"))).items():
        np.testing.assert_array_equal(array, before[name])
    onnx_files.save(model, tmp_path / "big.onnx")  # saved again: the weights file is rewritten, not appended to
    assert (tmp_path / "big.onnx.data").stat().st_size == size
    monkeypatch.setattr(onnx_files, "EXTERNAL_AT", 1 << 30)
    onnx_files.save(model, tmp_path / "big.onnx")  # small again: one file, no stale weights file beside it
    assert not (tmp_path / "big.onnx.data").exists() and onnx_files.external_files(tmp_path / "big.onnx") == {}


def test_save_works_where_the_working_folder_holds_a_weights_file_of_the_same_name(
    tiny_onnx: Path, tmp_path: Path, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX's own save refuses when a file named like the weights file exists in the *working* folder: optimize
    started beside a published model.onnx + model.onnx.data failed ("External data file exists")."""
    (tmp_path / "model.onnx.data").write_bytes(b"the user's own weights")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").mkdir()
    onnx_files.save(onnx.load(str(tiny_onnx)), tmp_path / "build" / "model.onnx")
    assert (tmp_path / "model.onnx.data").read_bytes() == b"the user's own weights"
    saved = onnx.load(str(tmp_path / "build" / "model.onnx"))
    for name, array in _weights(saved).items():
        np.testing.assert_array_equal(array, _weights(onnx.load(str(tiny_onnx)))[name])


def test_the_calibration_cache_tells_apart_models_that_differ_only_in_their_weights_file(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, large: None
) -> None:
    model = onnx.load(str(tiny_onnx))
    (tmp_path / "a").mkdir()
    onnx_files.save(model, tmp_path / "a" / "model.onnx")
    first = model.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * 2, first.name))
    (tmp_path / "b").mkdir()
    onnx_files.save(model, tmp_path / "b" / "model.onnx")
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()
    data, settings = load_npz(calib_npz), CalibrationSettings()
    keys = [cache_key(tmp_path / folder / "model.onnx", data, settings) for folder in ("a", "b")]
    assert keys[0] != keys[1]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_large_model_optimizes_deploys_and_serves(
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    large: None,
    precision: str,
    triton_server_factory: Callable[..., object],
) -> None:
    published = _as_published(tiny_onnx, tmp_path / "published")
    out, repo = tmp_path / "build", tmp_path / "repo"
    argv = ["optimize", str(published), "--calib", str(calib_npz), "--out", str(out), "--precision", precision]
    assert main([*argv, "--skip-timing"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "fp32.onnx.data").is_file()  # the FP32 reference, saved as a large model is
    model_files = onnx_files.external_files(out / manifest["files"]["model"])
    if precision == "fp32":
        assert model_files == {"fp32.onnx.data": out / "fp32.onnx.data"}  # the build's model shares its weights file
    assert main(["deploy", str(out), "--repo", str(repo), "--name", "big", "--max-batch", "8"]) == 0
    version = repo / "big" / "1"
    assert {name for name in model_files} <= {p.name for p in version.iterdir()}, "its weights file went along"
    pixels = load_npz(calib_npz).arrays["pixels"][:6]
    want = run_model(out / manifest["files"]["model"], {"pixels": pixels})["logits"]
    server = triton_server_factory(repo)
    with TritonGrpcClient(server.grpc_url, timeout_s=60) as client:  # type: ignore[attr-defined]
        got = client.infer("big", {"pixels": pixels})["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    original = run_model(published, {"pixels": pixels})["logits"]
    if precision == "fp32":
        np.testing.assert_allclose(got, original, rtol=1e-4, atol=1e-4)


def test_a_large_models_fixed_batch_of_one_is_freed_from_its_file(tmp_path: Path, large: None) -> None:
    """Freeing a batch of 1 runs the changed graph in ONNX Runtime: a large one from a file, not as bytes."""
    import make_tiny_models

    from optimizer.onnx_input import load_onnx_input

    fixed = make_tiny_models.write_tiny_onnx(tmp_path / "fixed.onnx", batch=1)
    published = _as_published(fixed, tmp_path / "published")
    _, _, freed = load_onnx_input(published, tmp_path / "out.onnx")
    assert freed is not None and freed.inputs == ["pixels"]
    assert (tmp_path / "out.onnx.data").is_file() and not list(tmp_path.glob("published/.session-*"))
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        run_model(tmp_path / "out.onnx", {"pixels": x})["logits"],
        np.concatenate([run_model(published, {"pixels": x[i : i + 1]})["logits"] for i in range(3)]),
        rtol=1e-4,
        atol=1e-5,
    )


def test_a_large_torch_export_program_is_exported_beside_its_weights_and_optimized(
    calib_npz: Path, tmp_path: Path, large: None
) -> None:
    """A `.pt2` of 2 GiB or more: its weights cannot be read back into one protobuf to rename its outputs (a 2.2 GB
    MLP failed here with `exported.onnx: not a readable ONNX model (DecodeError)`); they stay in their file."""
    import make_tiny_models
    import torch

    path = make_tiny_models.write_tiny_pt2(tmp_path / "cnn.pt2")
    out = tmp_path / "build"
    argv = ["optimize", str(path), "--input-names", "pixels", "--output-names", "logits", "--calib", str(calib_npz)]
    assert main([*argv, "--out", str(out), "--precision", "fp32", "--skip-timing"]) == 0
    assert (out / "fp32.onnx.data").is_file() and not list(tmp_path.glob(".build.*"))
    pixels = load_npz(calib_npz).arrays["pixels"][:5]
    program = torch.export.load(str(path))
    want = program.module()(torch.from_numpy(pixels)).detach().numpy()
    np.testing.assert_allclose(run_model(out / "model.onnx", {"pixels": pixels})["logits"], want, rtol=1e-4, atol=1e-5)


def test_a_large_torch_export_program_is_exported_without_reading_its_weights_back(
    tmp_path: Path, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporter writes a large program's weights beside the model; export renames, checks and shape-infers it
    from its files without loading them again (a 2 GiB protobuf cannot hold them)."""
    import make_tiny_models

    from optimizer.export import export_onnx
    from optimizer.source import load_source

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("export read a large model's weights back into memory")

    monkeypatch.setattr(onnx, "load_external_data_for_model", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", refuse)
    source = load_source(make_tiny_models.write_tiny_pt2(tmp_path / "cnn.pt2")).renamed(["pixels"], ["logits"])
    artifact = export_onnx(source, tmp_path / "cnn.onnx")
    assert [t.name for t in artifact.manifest.outputs] == ["logits"]
    assert onnx_files.external_files(tmp_path / "cnn.onnx") == {"cnn.onnx.data": tmp_path / "cnn.onnx.data"}


def test_a_large_model_below_opset_13_is_upgraded_without_one_protobuf(tmp_path: Path, large: None) -> None:
    """ONNX's version converter takes one protobuf (at most 2 GiB): a large model's graph is converted without its
    weights, which are read back after (it was refused: `… takes at most 2 GiB of model`)."""
    import make_tiny_models

    from optimizer.onnx_input import load_onnx_input

    legacy = make_tiny_models.write_legacy_onnx(tmp_path / "legacy.onnx", opset=11)
    published = _as_published(legacy, tmp_path / "published")
    model, original, _ = load_onnx_input(published, tmp_path / "out.onnx")
    assert (original, model.opset_import[0].version) == (11, 13)
    assert (tmp_path / "out.onnx.data").is_file() and not list(tmp_path.glob(".upgrade-*"))
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    name = model.graph.input[0].name
    np.testing.assert_allclose(
        run_model(tmp_path / "out.onnx", {name: x})["logits"], run_model(legacy, {name: x})["logits"], rtol=1e-5
    )

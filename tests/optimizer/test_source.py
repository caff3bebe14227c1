from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.source import load_source
from quantserve.errors import QuantserveError


def test_factory_with_named_inputs_and_options() -> None:
    source = load_source("make_tiny_models:tiny_cnn_factory")
    assert source.kind == "torch"
    assert source.name == "make_tiny_models"  # the module's name, not the function's
    assert source.input_names == ["pixels"]
    assert source.options["output_names"] == ["logits"]


def test_factory_with_positional_inputs_names_them_input() -> None:
    source = load_source("make_tiny_models:tiny_cnn_tuple_factory")
    assert source.input_names == ["input"]
    assert source.options == {}


def test_onnx_file(tiny_onnx: Path) -> None:
    source = load_source(tiny_onnx)
    assert (source.kind, source.path, source.name) == ("onnx", tiny_onnx, "tiny")


def test_pt2_program(tmp_path: Path) -> None:
    import make_tiny_models

    path = make_tiny_models.write_tiny_pt2(tmp_path / "cnn.pt2")
    source = load_source(path)
    assert source.kind == "exported_program"
    assert source.input_names == ["input"]
    assert tuple(source.example_inputs["input"].shape[1:]) == make_tiny_models.INPUT_SHAPE


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing.onnx", "missing.onnx: model file not found"),
        ("missing.pt2", "missing.pt2: model file not found"),
        ("no_such_module_xyz:factory", "cannot import module 'no_such_module_xyz'"),
        ("make_tiny_models:no_such_factory", "has no function 'no_such_factory'"),
        ("make_tiny_models:write_digits_like_npz", "factory must return"),
        ("not a model", "not a model file or factory"),
    ],
)
def test_bad_model_names_give_one_clear_line(model: str, message: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    if model.endswith("write_digits_like_npz"):
        monkeypatch.setattr("make_tiny_models.write_digits_like_npz", lambda: "not a tuple")
    with pytest.raises(QuantserveError, match=message) as info:
        load_source(model)
    assert "\n" not in str(info.value)


def test_corrupt_pt2(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt2"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(QuantserveError, match=r"broken\.pt2: not a readable torch\.export program"):
        load_source(path)


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(QuantserveError, match=r"unsupported model file type '\.pth'"):
        load_source(path)


def test_tensorflow_models_are_pointed_at_tf2onnx(tmp_path: Path) -> None:
    """A Keras .h5, a TF.js model.json or a SavedModel folder is refused with how to convert it: nsfwjs's user got
    only "unsupported model file type '.json'" (session 62)."""
    for name, flag in (("tempo.h5", "--keras"), ("model.json", "--tfjs"), ("m.tflite", "--tflite")):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(QuantserveError) as caught:
            load_source(tmp_path / name)
        assert f"python -m tf2onnx.convert {flag} {tmp_path / name} --output model.onnx" in str(caught.value)
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(QuantserveError) as caught:
        load_source(saved)
    assert f"python -m tf2onnx.convert --saved-model {saved} --output" in str(caught.value)

"""Calibration and held-out files that name their arrays differently are refused once, naming both (session 52).

Each file was checked alone: `--calib` named `img`, `--eval` named `image`; the error on the first said "name them
with --input-names img", and with that flag the second said "name them with --input-names image"."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.errors import QuantserveError


def test_files_naming_their_arrays_differently_are_refused_together_before_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import make_tiny_models

    import optimizer.pipeline

    def no_export(*_: object) -> None:
        raise AssertionError("exported before the data's names were checked")

    monkeypatch.setattr(optimizer.pipeline, "ExportOnnx", no_export)
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", input_name="img")
    held_out = make_tiny_models.write_digits_like_npz(tmp_path / "heldout.npz", input_name="image", seed=1)
    options = OptimizeOptions(
        "make_tiny_models:tiny_cnn_tuple_factory",
        calib,
        "int8",
        "embedded",
        tmp_path / "out",
        eval_path=held_out,
        speed=SpeedSettings(enabled=False),
    )
    with pytest.raises(QuantserveError) as caught:
        optimize(options)
    message = str(caught.value)
    assert message.startswith("the data files name their arrays differently: ")
    assert f"{calib} has ['img']" in message and f"{held_out} has ['image']" in message
    assert message.endswith("name them alike (the model's inputs: ['input'])")
    assert not (tmp_path / "out").exists()

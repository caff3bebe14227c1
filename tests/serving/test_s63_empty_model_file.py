"""A 0-byte model file in a build. Probe D (session 63): `deploy` of a build whose model.onnx was emptied (its sha256
fixed in the manifest) was refused "ONNX checker rejected the model (The model does not have an ir_version set
properly.)", which sends a reader to the model's export; the file was empty. Now said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving.build_checks import check_onnx_file


def test_an_empty_model_file_is_named_empty(tmp_path: Path) -> None:
    empty = tmp_path / "model.onnx"
    empty.write_bytes(b"")
    with pytest.raises(QuantserveError) as refused:
        check_onnx_file(empty)
    assert str(refused.value) == f"{empty}: the file is empty (0 bytes), not an ONNX model"
    with pytest.raises(QuantserveError, match="the file is empty"):
        check_onnx_file(tmp_path / "model.onnx", require=True)

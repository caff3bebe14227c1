"""`--data` naming a folder says it is one (pl10: "data file not found", though the path existed as a folder);
loadtest, evaluate, optimize and infer all read it through `load_npz`."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.data import load_npz
from quantserve.errors import QuantserveError


def test_a_folder_is_said_to_be_one(tmp_path: Path) -> None:
    folder = tmp_path / "held.npz"
    folder.mkdir()
    with pytest.raises(QuantserveError) as raised:
        load_npz(folder)
    assert str(raised.value) == f"{folder}: a folder, not a data file; give the .npz file itself"


def test_a_missing_file_is_still_not_found(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError) as raised:
        load_npz(tmp_path / "gone.npz")
    assert str(raised.value) == f"{tmp_path / 'gone.npz'}: data file not found"

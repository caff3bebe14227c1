"""A .npz whose every array is rank 0 says so, not only that it "holds zero samples" (session 50)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.data import load_npz
from quantserve.errors import QuantserveError


def test_a_file_of_rank_0_arrays_names_them_and_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, x=np.float32(3.0))
    with pytest.raises(QuantserveError) as caught:
        load_npz(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: holds no samples: every array is rank 0"), message
    assert "x[None]" in message


def test_rows_of_none_still_say_zero_samples(tmp_path: Path) -> None:
    path = tmp_path / "none.npz"
    np.savez(path, x=np.zeros((0, 8), np.float32))
    with pytest.raises(QuantserveError, match=r"holds zero samples$"):
        load_npz(path)

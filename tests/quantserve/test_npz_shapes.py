"""An .npz whose input was saved as an object array (rows of several shapes) names the array and the way out.

A probe's images of 8, 12 and 16 px saved together read "not a readable .npz file (Object arrays cannot be loaded
when allow_pickle=False)", naming neither the array nor what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.data import load_npz
from quantserve.errors import QuantserveError


def test_rows_of_several_sizes_are_named_with_the_way_out(tmp_path: Path) -> None:
    images = np.empty(3, dtype=object)
    images[:] = [np.zeros((1, size, size), np.float32) for size in (8, 12, 16)]
    path = tmp_path / "mixed.npz"
    np.savez(path, image=images, labels=np.arange(3))
    with pytest.raises(QuantserveError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"{path}: array 'image' is an object array of shape (3,), which is never unpickled; rows of an input must "
        "share one shape (rows of several sizes: resize or pad them to one, or save one .npz per size), and strings "
        "go as a str or bytes array"
    )


def test_a_damaged_file_still_says_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(QuantserveError, match=r"not a readable \.npz file"):
        load_npz(path)

"""`infer --out` saves a string output as an array `np.load` reads without pickles, and quantserve's own data
reader takes back: a served label output (Triton's BYTES, an object array of bytes) was saved as an object array,
which both refused (probe 69C)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantserve.cli.commands.infer import loadable


def test_bytes_outputs_are_saved_as_str_and_load_without_pickles(tmp_path: Path) -> None:
    served = np.array([[b"d\xc3\xb6g"], [b""], [b"a,b"]], dtype=object)
    saved = tmp_path / "out.npz"
    np.savez(saved, label=loadable(served), score=loadable(np.ones((3, 2), np.float32)))
    with np.load(saved) as loaded:
        assert loaded["label"].tolist() == [["dög"], [""], ["a,b"]]
        assert loaded["score"].dtype == np.float32


def test_bytes_that_are_not_utf8_stay_bytes() -> None:
    kept = loadable(np.array([b"\xff\x00x", b"ok"], dtype=object))
    assert kept.dtype.kind == "S" and kept.tolist() == [b"\xff\x00x", b"ok"]

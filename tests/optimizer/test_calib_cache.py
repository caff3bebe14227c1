"""The calibration cache's size cap: whole entries go, least recently used first, never one in use."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from optimizer import calib_cache
from quantserve.errors import QuantserveError

A, B, C = ("a" * 64, "b" * 64, "c" * 64)


def _entry(folder: Path, key: str, size: int, age_s: float) -> None:
    when = time.time() - age_s
    for name in (f"{key}.onnx", f"{key}.json"):
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (when, when))


def test_least_recently_used_entries_go_whole_until_under_the_cap(tmp_path: Path) -> None:
    _entry(tmp_path, A, 1000, age_s=3000)
    _entry(tmp_path, B, 1000, age_s=2000)
    _entry(tmp_path, C, 1000, age_s=1000)
    (tmp_path / "notes.txt").write_bytes(b"y" * 5000)  # not an entry: never counted, never removed
    calib_cache.touch(tmp_path / f"{A}.onnx")  # a hit makes A the most recently used... and in use
    os.utime(tmp_path / f"{A}.onnx", (time.time() - 900, time.time() - 900))
    os.utime(tmp_path / f"{A}.json", (time.time() - 900, time.time() - 900))
    assert calib_cache.prune(tmp_path, limit=4000) == [B]  # 6000 bytes of entries: the oldest, B, goes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{A}.onnx", f"{A}.json", f"{C}.onnx", f"{C}.json", "notes.txt"]
    )
    assert calib_cache.prune(tmp_path, limit=4000) == []  # under the cap: nothing more


def test_entries_in_use_stay_over_the_cap(tmp_path: Path) -> None:
    _entry(tmp_path, A, 1000, age_s=10)
    _entry(tmp_path, B, 1000, age_s=5000)
    assert calib_cache.prune(tmp_path, limit=0) == [B]
    assert (tmp_path / f"{A}.onnx").is_file()  # touched 10 s ago: another optimize may be copying it


def test_the_cap_comes_from_the_environment_or_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(calib_cache.LIMIT_ENV, raising=False)
    assert calib_cache.limit_bytes() == int(calib_cache.DEFAULT_LIMIT_GB * (1 << 30))
    monkeypatch.setenv(calib_cache.LIMIT_ENV, "0.5")
    assert calib_cache.limit_bytes() == 1 << 29
    for bad in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv(calib_cache.LIMIT_ENV, bad)
        with pytest.raises(QuantserveError, match=f"QUANTSERVE_CACHE_MAX_GB='{bad}': expected a size in GB"):
            calib_cache.limit_bytes()

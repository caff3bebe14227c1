"""A config.pbtxt that cannot be written names its path and what was kept (session 46: `rollback` on a full disk said
"[Errno 28] No space left on device" and nothing else; on a read-only disk it named a hidden temporary)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from serving import model_config
from serving.model_config import write_config


def test_a_full_disk_names_the_config_and_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.pbtxt").write_text('name: "m"\n')

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_config.os, "replace", full)
    with pytest.raises(OSError) as caught:
        write_config({"name": "m", "max_batch_size": 8}, tmp_path)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "config.pbtxt")
    assert "no space left on device" in str(caught.value)
    assert "the old file is untouched" in str(caught.value)
    assert (tmp_path / "config.pbtxt").read_text() == 'name: "m"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["config.pbtxt"]  # no temporary left

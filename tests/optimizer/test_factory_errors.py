"""A factory that fails, at import or when called, is one line naming it, the exception and the user's line.

Found by a probe: batdetect2's module raised AttributeError at import (a module-level annotation) and a factory's
RuntimeError ("weights file missing") both ended optimize in a full traceback, exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from optimizer.source import load_source
from quantserve.cli import main
from quantserve.errors import QuantserveError

RAISES = 'def factory():\n    raise RuntimeError("weights file missing: /nope/model.pt")\n'
AT_IMPORT = "sf = None\n\n\ndef read(x: sf.SoundFile) -> None:\n    pass\n\n\ndef factory():\n    return None\n"
IN_LIBRARY = 'import json\n\n\ndef factory():\n    return json.loads("{")\n'
INTERRUPTED = "def factory():\n    raise KeyboardInterrupt\n"


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> str:
    """`name:factory` for a module holding `text`, importable from `tmp_path` for this test alone."""
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return f"{name}:factory"


def _error(spec: str) -> str:
    with pytest.raises(QuantserveError) as caught:
        load_source(spec)
    return str(caught.value)


def test_a_factory_that_raises_is_named_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _module(tmp_path, monkeypatch, "qs_fac_raises", RAISES)
    assert _error(spec) == (
        "factory 'qs_fac_raises:factory' raised RuntimeError: weights file missing: /nope/model.pt (qs_fac_raises.py:2)"
    )


def test_a_module_that_fails_at_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _module(tmp_path, monkeypatch, "qs_fac_at_import", AT_IMPORT)
    assert _error(spec) == (
        "factory 'qs_fac_at_import:factory': importing 'qs_fac_at_import' raised AttributeError: "
        "'NoneType' object has no attribute 'SoundFile' (qs_fac_at_import.py:4)"
    )


def test_the_line_is_the_users_not_the_librarys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _module(tmp_path, monkeypatch, "qs_fac_in_library", IN_LIBRARY)
    assert _error(spec) == (
        "factory 'qs_fac_in_library:factory' raised JSONDecodeError: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1) (qs_fac_in_library.py:5)"
    )


def test_an_interrupt_in_the_factory_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _module(tmp_path, monkeypatch, "qs_fac_interrupted", INTERRUPTED)
    with pytest.raises(KeyboardInterrupt):
        load_source(spec)


def test_optimize_exits_2_with_one_line(
    tmp_path: Path, calib_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _module(tmp_path, monkeypatch, "qs_fac_cli", RAISES)
    assert main(["optimize", spec, "--precision", "fp32", "--calib", str(calib_npz), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "factory 'qs_fac_cli:factory' raised RuntimeError: weights file missing: /nope/model.pt (qs_fac_cli.py:2)"
    )
    assert "\n" not in err

"""`make demo` on a busy machine: optimize refused the INT8 build on speed with "deploy fp32 (or pass
--allow-slower)", a flag the demo does not take (quick-start probe: 0.99× with 73 % of the cores taken by others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer import pipeline
from quantserve.cli.demo import optimize_variant
from quantserve.errors import QuantserveError

REFUSAL = (
    "INT8 is 0.99× FP32 here, below --min-speedup 1.1; deploy fp32 (or pass --allow-slower); timed on a busy machine"
)


def _refusing(message: str):  # type: ignore[no-untyped-def]
    def optimize(options: object) -> None:
        raise QuantserveError(message)

    return optimize


def test_the_speed_refusal_says_what_the_demo_does(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pipeline, "optimize", _refusing(REFUSAL))
    with pytest.raises(QuantserveError) as caught:
        optimize_variant(object(), tmp_path / "repo")
    assert str(caught.value).startswith(REFUSAL + ". The demo stops here, nothing of INT8 deployed (digits_fp32 is")
    assert "run `make demo` again when the machine is idle, or `quantserve demo --allow-slower`" in str(caught.value)


def test_other_errors_pass_as_they_are(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pipeline, "optimize", _refusing("no INT8 model holds the drift budget"))
    with pytest.raises(QuantserveError, match=r"^no INT8 model holds the drift budget$"):
        optimize_variant(object(), tmp_path / "repo")

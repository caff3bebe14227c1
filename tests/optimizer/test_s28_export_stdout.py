"""The TorchScript exporter's failure dump stays off stdout: `optimize --json` prints one JSON document.

torch's C++ prints "Torch IR graph at exception: …" straight to file descriptor 1 when the TorchScript
exporter fails (CRISCross: 959 lines before optimize's own output); optimize falls back to the dynamo
exporter, so the build succeeds, and `--json`'s stdout did not parse. `torch.fft.rfft` has no
TorchScript symbolic at opset 17 (the dump is printed) and the dynamo exporter writes it as DFT.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FACTORY_MODULE = """
import torch


class Spectrum(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.fft.rfft(self.proj(x)).abs()


def factory():
    torch.manual_seed(0)
    return Spectrum().eval(), {"x": torch.randn(2, 8)}
"""


@pytest.fixture
def rfft_factory(tmp_path: Path) -> str:
    (tmp_path / "s28_rfft_factory.py").write_text(FACTORY_MODULE)
    return "s28_rfft_factory:factory"


def test_the_torchscript_failure_dump_goes_to_the_log_not_to_fd_1(
    rfft_factory: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from optimizer.source import load_source
    from optimizer.torch_export import _export_torchscript

    sys.path.insert(0, str(tmp_path))
    try:
        source = load_source(rfft_factory)
    finally:
        sys.path.remove(str(tmp_path))
    with caplog.at_level(logging.INFO, "optimizer.torch_export"), pytest.raises(Exception, match="fft_rfft"):
        _export_torchscript(source, tmp_path / "m.onnx", 17)
    printed = capfd.readouterr()
    assert "Torch IR graph" not in printed.out + printed.err
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "the TorchScript exporter failed (UnsupportedOperatorError" in record.getMessage()
    assert "Torch IR graph at exception" in record.getMessage()


@pytest.mark.slow
def test_optimize_json_stdout_parses_when_torchscript_falls_back_to_dynamo(rfft_factory: str, tmp_path: Path) -> None:
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env["QUANTSERVE_LOG_DIR"] = str(tmp_path / "log")
    argv = ["optimize", rfft_factory, "--precision", "fp32", "--calib", str(calib), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "quantserve", *argv, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["stages"][0]["exporter"] == "dynamo"
    assert "Torch IR graph at exception" in (tmp_path / "log" / "quantserve.log").read_text()

"""compose.yaml's advice for a CPU-only host names only a target the serving image can serve.

Before: it said "deploy with --target onnxruntime (device cpu) or embedded", but the embedded target's model.py runs
under the image's system Python (the Python backend stub), which the Dockerfile gives no ONNX Runtime: the project
is installed into its own venv (/opt/quantserve/venv), and on the 24.10 base that venv is Python 3.11 while the
stub's system Python is 3.10 (docs/production.md says so; session 62)."""

from __future__ import annotations

from dockerfile_model import REPO, stages


def test_the_cpu_only_advice_leaves_the_embedded_target_out() -> None:
    header = [line for line in (REPO / "compose.yaml").read_text().splitlines() if line.startswith("#")]
    advice = " ".join(header)[" ".join(header).index("CPU-only") :]
    assert "--target onnxruntime" in advice
    assert "or embedded" not in advice and "--target embedded" not in advice
    # the reason: every pip install in the serving stage goes into the venv, none into the system Python
    installs = [run for run in stages()["serve"].all("RUN") if "pip install" in run]
    assert installs and all("python3 -m pip" not in run and "/usr/bin/python" not in run for run in installs)

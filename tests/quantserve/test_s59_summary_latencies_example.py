"""examples/summary_latencies.py, the re-measure of what Triton's latency summaries cost: its deployment and data
must be what the served model takes (no timing here: the example prints the figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from examples.summary_latencies import mlp_model, write
from quantserve.data import load_npz


def test_the_example_deploys_the_mlp_and_writes_data_it_takes(tmp_path: Path) -> None:
    import onnxruntime as ort

    write(tmp_path)
    data = load_npz(tmp_path / "data.npz")
    assert data.arrays["x"].dtype == np.float32 and data.arrays["x"].shape == (512, 64)
    served = tmp_path / "repo" / "mlp" / "1" / "model.onnx"
    assert served.exists() and "max_batch_size: 8" in (tmp_path / "repo" / "mlp" / "config.pbtxt").read_text()
    session = ort.InferenceSession(mlp_model().SerializeToString(), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": data.arrays["x"][:4]})
    assert logits.shape == (4, 10) and np.isfinite(logits).all()

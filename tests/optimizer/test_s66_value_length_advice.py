"""INT8 of a model whose answer length follows its values (the INT8 search skipped: one static Q/DQ candidate) was
refused with "--method percentile or --method entropy clips outliers and may hold it"; on SLANet-plus both took 5-6
min and changed 65-66 of 72 lengths as minmax had, and their refusals named no route (probe 66I). Every drift refusal
of this route now names the one that works, `--precision fp32 --unbatched` (verified per request, served with
max_batch_size 0); the method advice stays only where the miss is the cosine of requests of FP32's length.

The model is test_s66_value_length_int8's decoder whose length follows its MatMul's answer (INT8 moves it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.drift_budget import BudgetExceeded
from optimizer.optimize_options import OptimizeOptions
from quantserve.cli import main
from quantserve.cli.optimize_refusal import with_method_hint
from tests.optimizer.test_s66_value_length_int8 import _optimize

ROUTE = "--precision fp32 --unbatched"
CLIPS = "clips outliers"


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_a_length_refusal_names_the_fp32_route(tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str) -> None:
    assert main(_optimize(tmp_path, True, "--allow-slower", "--method", method)) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "requests changed length" in err, err
    assert ROUTE in err and "max_batch_size 0" in err and "verified per request" in err, err
    assert CLIPS not in err, err  # clipping outliers does not keep a decoder's lengths


def test_a_cosine_miss_on_equal_lengths_keeps_the_method_advice() -> None:
    from optimizer.value_length_int8 import refusal_advice

    violation = {"output": "y", "metric": "cosine_mean", "value": 0.9, "budget": 0.99}
    record = {"violations": [violation], "outputs": {}}
    advice, extra = refusal_advice(record)
    assert any(ROUTE in line for line in advice), advice
    refusal = BudgetExceeded("INT8 misses the drift budget", {"refused_for": "drift", **extra})
    options = OptimizeOptions("m.onnx", "c.npz", "int8", "onnxruntime", "out", unbatched=True)
    assert CLIPS in str(with_method_hint(refusal, options))

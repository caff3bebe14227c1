"""A frame classifier whose background logit is pinned at 0, the other classes rising above it, is a sequence.

Its pinned class has no spread, so `shared_scale` (max spread ≤ 10× min) failed and the output read `dense`: judged
per column (correlation 0.9982), a build flipping 1.5 % of frames — 52 % of sequences changed — passed.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.output_kinds import infer_kind


@pytest.mark.parametrize("background_share", [0.34, 0.8])  # the pinned class rarely or mostly the answer
def test_a_pinned_background_logit_keeps_the_frames_a_sequence(background_share: float) -> None:
    rng = np.random.default_rng(0)
    answer = np.where(rng.random((256, 50)) < background_share, 0, rng.integers(1, 3, (256, 50)))
    logits = rng.normal(-3.0, 1.0, (256, 50, 3))
    logits[..., 0] = 0.0
    for c in (1, 2):
        logits[..., c] += np.where(answer == c, 6.0, 0.0)
    assert infer_kind(logits.astype(np.float32), None) == "sequence"

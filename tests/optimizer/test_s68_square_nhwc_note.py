"""PoseNet's (N, 25, 25, 34) offset maps, NHWC, were noted "[N,25,H,W] judged as a dense map; if its channels are
per-pixel class scores …": 25 is its rows (probe 68M). A square NHWC map gets no such note; an NCHW one still does."""

from __future__ import annotations

import numpy as np

from optimizer.class_maps import dense_map_note


def test_a_square_nhwc_map_is_not_noted_as_class_scores() -> None:
    offsets = np.random.default_rng(0).normal(0, 8, (4, 25, 25, 34)).astype(np.float32)
    assert dense_map_note("offset_2", "dense", offsets) == ""


def test_an_nchw_map_is_still_noted() -> None:
    logits = np.random.default_rng(1).normal(0, 1, (4, 4, 16, 16)).astype(np.float32)
    assert "--output-kind seg=class_map" in dense_map_note("seg", "dense", logits)

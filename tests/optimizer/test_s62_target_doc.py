"""docs/adding-a-target.md tells a plugin's `build` to record its own name as the manifest's target, as every
built-in target does: `deploy` lays a build out by that field alone.

Before: the doc asked only for "a stage record"; a plugin that delegated to the embedded build wrote
`"target": "embedded"` and deploy laid it out as embedded, with nothing said (session 62)."""

from __future__ import annotations

import inspect
from pathlib import Path

from optimizer.targets import get_target, target_names

DOC = (Path(__file__).resolve().parents[2] / "docs" / "adding-a-target.md").read_text()


def test_the_doc_says_build_records_the_targets_own_name() -> None:
    flat = " ".join(DOC.split())
    build = flat[flat.index("- `build(onnx, out_dir) -> Artifact`") : flat.index("- `triton_layout(")]
    assert "target=self.name" in build and "get_target(manifest.target)" in build


def test_every_built_in_target_does_so() -> None:
    for name in {"embedded", "onnxruntime", "tensorrt"} & set(target_names()):
        assert "target=self.name" in inspect.getsource(type(get_target(name)).build), name

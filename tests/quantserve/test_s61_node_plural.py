"""optimize's stage table counts nodes in the singular for one (session 61: rxnfp's BERT classifier's calibrate row
read "100% of MACs in INT8, 1 nodes FP32")."""

from __future__ import annotations

from quantserve.cli.optimize_tables import _details


def _calibrate(kept: list[str]) -> dict:
    return {"stage": "calibrate", "scheme": "dynamic", "weight_type": "QInt8", "int8_mac_share": 1.0, "kept_fp32": kept}


def test_one_node_kept_fp32_is_one_node() -> None:
    assert _details(_calibrate(["/pooler/Tanh"])).endswith("of MACs in INT8, 1 node FP32")
    assert _details(_calibrate(["a", "b"])).endswith("of MACs in INT8, 2 nodes FP32")
    assert _details(_calibrate(["a"]), {"GRU": 1}).endswith(", 1 node kept FP32, 1 GRU with no INT8 kernel")


def test_an_exported_graph_of_one_node_is_one_node() -> None:
    assert _details({"stage": "export", "opset": 17, "nodes": 1}) == "opset 17, 1 node"
    assert _details({"stage": "export", "opset": 17, "nodes": 93}) == "opset 17, 93 nodes"

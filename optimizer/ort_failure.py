"""ONNX Runtime's failures said in our one line: the node, its op and ORT's own message, whole.

ORT's exception text is a preamble, a node, a source location and a message that may span lines
(a Resize's "'Linear' mode only supports:" and its bullets). Its first line, cut at a length, ended a
refusal at "… Name:'…ResizeBilinear' Status Message" and lost the cause; the message now comes on one
line, trimmed at a word and never inside a parenthesis. ORT's own log of the same failure is silenced
where the session is made (`log_severity_level` 4), so the reason is said once, here.
"""

from __future__ import annotations

import re
from pathlib import Path

from optimizer.unknown_ops import unknown_ops_advice
from quantserve.errors import QuantserveError

MESSAGE_CHARS = 400  # ORT's longest messages (a Resize's supported modes) fit; a dump of shapes does not
_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'(?: Status Message: )?")
_PREAMBLE = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (?:Load model from .*? failed:)?")
_BULLET = re.compile(r"\n\s*\*\s+")  # a list's items, each on its own line
# a load that lacks a kernel: "Could not find an implementation for Conv(11) node with name '/f/f.0/Conv'"
_NO_KERNEL = re.compile(r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'")
# where in ORT's source: "upsamplebase.h:553 ScalesValidation ", ".../reshape_helper.h:91 onnxruntime::…(…, bool) "
_SOURCE = re.compile(r"^[\w./-]+\.(?:h|cc|cpp):\d+ [\w:~<>]+(?:\([^)]*\))? ")


def failing_node(exc: Exception) -> tuple[str, str] | None:
    """The op type and name of the node ORT names in `exc` as failing to run, if it names one."""
    found = _NODE.search(str(exc))
    return (found.group(1), found.group(2)) if found else None


def ort_reason(exc: Exception) -> str:
    """ORT's failure in one line: "Resize node 'name': its message" where a node failed to run, else the message
    less its "[ONNXRuntimeError] : 1 : FAIL :" preamble."""
    text = " ".join(_BULLET.sub(" ", str(exc)).split()) or type(exc).__name__
    found = _NODE.search(text)
    if not found:
        return trim(_PREAMBLE.sub("", text).strip())
    message = _SOURCE.sub("", text[found.end() :])
    return f"{found.group(1)} node '{found.group(2)}': {trim(message.strip())}"


def trim(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` cut to about `limit` characters at a word, before any parenthesis left open, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    while cut.count("(") > cut.count(")"):
        cut = cut[: cut.rindex("(")].rstrip()
    return cut.rstrip(" ,;:") + " …"


def cannot_load(model: str | Path, exc: Exception, path: str | Path | None = None) -> QuantserveError:
    """'MODEL: ONNX Runtime cannot load it (…)' with the first line of ORT's message, less its path preamble, and
    the way out where the op it lacks is a float64 node of the file at `path` (default: `model`, where a file); where
    ORT knows no op of that file, every such op said whole and the outputs free of them in place of ORT's message."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    reason = _PREAMBLE.sub("", first).strip()
    unknown = unknown_ops_advice(reason, path or model, model)
    if unknown:
        return QuantserveError(f"{model}: ONNX Runtime cannot load it{unknown}")
    return QuantserveError(
        f"{model}: ONNX Runtime cannot load it ({reason[:240]}){_float64_advice(reason, path or model)}"
    )


def _float64_advice(reason: str, path: str | Path) -> str:
    """Why a float64 model's Conv has no implementation: ORT's CPU kernels lack double for many ops, and its own
    "Could not find an implementation for Conv(11) node with name '…'" never says the type."""
    found = _NO_KERNEL.search(reason)
    if not found or not str(path).endswith(".onnx") or not Path(path).is_file():
        return ""
    op, name = found.group(1), found.group(2)
    try:
        import onnx

        model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    except Exception:  # an unreadable file keeps ORT's line as it is
        return ""
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    nodes = [n for n in graph.node if n.op_type == op and (n.name == name or not name)]
    if not any(types.get(t) == onnx.TensorProto.DOUBLE for n in nodes for t in [*n.input, *n.output]):
        return ""
    return (
        f"; ONNX Runtime's CPU kernels lack float64 (tensor(double)) for {op}: export the model in float32 "
        "(e.g. model.float() and float32 example inputs before torch.onnx.export) and give it float32 data"
    )

"""A recurrent model's state pairs, recorded by `deploy` in its served config so clients can run it as a stream.

Triton serves such a model as any other: the state travels with each request (an input) and comes back with each
answer (an output), the client carrying it from one call to the next. Only the build knew which output feeds which
input (`optimizer.state_loop`), so `evaluate` fed every served row the FP32 state saved in the data: the check
`optimize` itself calls blind to build-up (a small RNN's INT8 build: top-1 agreement 0.95 row by row through the
server, 0.9375 as a stream fed its own state). `deploy` writes the pairs as one config parameter, read back here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STATE_PARAMETER = "quantserve_state"  # "output=input,output=input": each output fed back as that input next call


def state_parameter(pairs: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The config parameter for a build's state pairs ({"output": …, "input": …} each); {} for none."""
    if not pairs:
        return {}
    return {STATE_PARAMETER: ",".join(f"{pair['output']}={pair['input']}" for pair in pairs)}


def recorded_state(config: Mapping[str, Any]) -> dict[str, str]:
    """{output: input} of the state pairs `deploy` recorded in a served config (Triton's JSON); {} where none."""
    value = (config.get("parameters") or {}).get(STATE_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    pairs = (item.partition("=") for item in str(text).split(",") if item)
    return {output: input_name for output, sep, input_name in pairs if sep and output and input_name}

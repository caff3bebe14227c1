"""The config.pbtxt a deploy writes, from the build's manifest, its target's layout and the serving options:
dynamic batching, instances, the bounded queue and version policy (`ServingPolicy`), and the parameters clients read
back (`model_parameters`). `serving.deploy` checks the build and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optimizer.nan_inputs import NAN_INPUTS
from optimizer.targets import TritonLayout
from optimizer.token_lengths import LENGTH_INPUT
from quantserve.artifact import GRAPH_OUTPUTS, STATE_PAIRS, TYPED_KINDS, Manifest, TensorSpec
from quantserve.errors import QuantserveError
from serving.batch_axes import check_batch_axes
from serving.build_parameters import PRECISION_PARAMETER, speed_parameter
from serving.drift_parameter import drift_missed_parameter, thin_evidence_parameter
from serving.gates_parameter import gates_parameter
from serving.graph_parameter import graph_parameter
from serving.kinds_parameter import kinds_parameter, labelled_kinds_parameter
from serving.length_parameter import length_parameter
from serving.model_config import (
    DynamicBatching,
    InstanceGroup,
    ModelConfig,
    QueuePolicy,
    TensorConfig,
    VersionPolicy,
    default_preferred_batch_sizes,
)
from serving.nan_parameter import nan_parameter
from serving.scalar_tensors import scalar_parameter, served_spec
from serving.state_parameter import state_parameter

# How the embedded Python backend batches requests of different lengths (optimizer/python_backend/model.py).
RAGGED_BATCHING = ("group", "pad")
KEEP_VERSIONS = 5  # version folders kept on disk for rollback


@dataclass(frozen=True)
class ServingPolicy:
    """How the deployed model behaves in service: its bounded queue and how many versions are live or kept."""

    queue: QueuePolicy = field(default_factory=QueuePolicy)
    live_versions: int = 1  # version_policy latest { num_versions }
    keep_versions: int = KEEP_VERSIONS  # folders kept on disk (0: all)

    def __post_init__(self) -> None:
        VersionPolicy(self.live_versions)  # validates
        if self.keep_versions < 0:
            raise QuantserveError(f"--keep-versions must be ≥ 0, got {self.keep_versions}")
        if self.keep_versions and self.keep_versions < self.live_versions:
            raise QuantserveError(f"--keep-versions {self.keep_versions} is below --live-versions {self.live_versions}")


def older_unbatched_config(config: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    """`config` of an --unbatched build with the inputs deploy wrote before they said one row a request (axis 0 as
    the manifest has it, `request_inputs`): redeploying such a build over its older config is no interface change."""
    return {**config, "input": [TensorConfig.from_spec(served_spec(t), False).to_dict() for t in manifest.inputs]}


def build_config(
    manifest: Manifest,
    layout: TritonLayout,
    name: str,
    max_batch: int,
    max_queue_delay_us: int,
    preferred: Sequence[int] | None,
    instances: int,
    ragged_batching: str = "group",
    policy: ServingPolicy | None = None,
) -> ModelConfig:
    """The model's Triton config from its manifest, the target's layout and the batching options."""
    policy = policy or ServingPolicy()
    batched = max_batch > 0
    if policy.queue.bounded and not batched:
        raise QuantserveError("a bounded queue (--max-queue-size, --queue-timeout-us) needs --max-batch > 0")
    if preferred and not batched:  # dropped in silence, it deployed something other than what was asked
        raise QuantserveError("preferred batch sizes (--preferred-batch) need --max-batch > 0 (dynamic batching)")
    if batched:
        check_batch_axes(manifest)
    # The Python backend pads requests of different lengths into one batch (optimizer/python_backend).
    ragged = pads_ragged(manifest, layout, max_batch)
    if ragged_batching not in RAGGED_BATCHING:
        raise QuantserveError(f"ragged batching '{ragged_batching}' is not one of {', '.join(RAGGED_BATCHING)}")
    specs = manifest.inputs if batched else [served_spec(t) for t in request_inputs(manifest)]
    inputs = [TensorConfig.from_spec(t, batched, ragged and _has_dynamic_inner_dim(t)) for t in specs]
    outputs = manifest.outputs if batched else [served_spec(t) for t in manifest.outputs]
    batching = None
    if batched:
        sizes = tuple(preferred) if preferred else default_preferred_batch_sizes(max_batch)
        batching = DynamicBatching(sizes, max_queue_delay_us, policy.queue)
    return ModelConfig(
        name=name,
        runtime=dict(layout.runtime),
        inputs=inputs,
        outputs=[TensorConfig.from_spec(t, batched) for t in outputs],
        max_batch_size=max(max_batch, 0),
        dynamic_batching=batching,
        instance_groups=[InstanceGroup(layout.instance_kind, instances)],
        parameters=model_parameters(manifest, ragged_batching if ragged else None, batched),
        version_policy=VersionPolicy(policy.live_versions),
    )


def request_inputs(manifest: Manifest) -> list[TensorSpec]:
    """The inputs of a build served with max_batch_size 0, axis 0 fixed at 1 where it is an --unbatched build's: such
    a build was verified one data row a request (`data[i:i+1]`), and dims [1, …] tell clients so. Served as [-1, …]
    (a graph declaring axis 0 dynamic that bakes 1), `infer` sent a whole file as one request (ORT asked for 29 GB)
    and `evaluate` 64 rows ("Shape mismatch … {1,128,192} != {64,128,192}")."""
    if not manifest.unbatched or manifest.whole_samples:  # a whole sample's frames: axis 0 is its length
        return list(manifest.inputs)
    return [TensorSpec(t.name, t.dtype, (1, *t.shape[1:])) if t.shape else t for t in manifest.inputs]


def pads_ragged(manifest: Manifest, layout: TritonLayout, max_batch: int) -> bool:
    """Whether requests of different lengths meet in one batch of the Python backend (optimizer/python_backend)."""
    backend = layout.runtime.get("backend")
    return max_batch > 0 and backend == "python" and any(map(_has_dynamic_inner_dim, manifest.inputs))


def model_parameters(manifest: Manifest, ragged_batching: str | None, batched: bool = True) -> dict[str, str]:
    """The config's parameters: the build's precision, where clients read it (not from the model's name), a
    recurrent model's state pairs (`serving.state_parameter`), the reference graph's word on the outputs
    (`serving.graph_parameter`), the kinds, the length input and the gates the build was told, the kinds its labels
    decided (`serving.kinds_parameter`, `serving.length_parameter`, `serving.gates_parameter`), the inputs whose NaN it
    accepts (`serving.nan_parameter`), its in-process speed verdict (`serving.build_parameters`), the drift budget it
    missed and the rates it held on rows too few to show them (`serving.drift_parameter`), the scalars a model that
    does not batch serves as [1] (`serving.scalar_tensors`), and how the Python backend batches requests of different
    lengths where it must."""
    parameters = {PRECISION_PARAMETER: manifest.precision} if manifest.precision else {}
    parameters.update(state_parameter(manifest.extra.get(STATE_PAIRS) or []))  # evaluate runs it as a stream
    parameters.update(graph_parameter(manifest.extra.get(GRAPH_OUTPUTS)))  # evaluate reads kinds as optimize did
    parameters.update(kinds_parameter(manifest.extra.get(TYPED_KINDS)))  # … and takes the kinds it was told
    parameters.update(labelled_kinds_parameter(manifest.verification))  # … and those its labels decided
    parameters.update(length_parameter(manifest.extra.get(LENGTH_INPUT)))  # … and the length input it was told
    parameters.update(gates_parameter(manifest.verification))  # … and the gates it was judged under
    parameters.update(nan_parameter(manifest.extra.get(NAN_INPUTS)))  # the sending commands accept NaN there
    parameters.update(speed_parameter((manifest.verification or {}).get("speed")))  # a report's speed verdict
    parameters.update(drift_missed_parameter(manifest.verification))  # a build shipped with --keep-failing
    parameters.update(thin_evidence_parameter(manifest.verification))  # … or with --allow-thin-evidence
    scalars = [] if batched else [t.name for t in [*manifest.inputs, *manifest.outputs] if not t.shape]
    parameters.update(scalar_parameter(scalars))  # the client sends and answers them as the model's rank 0
    return {**parameters, **({"ragged_batching": ragged_batching} if ragged_batching else {})}


def _has_dynamic_inner_dim(spec: TensorSpec) -> bool:
    return any(not isinstance(d, int) or d < 1 for d in spec.shape[1:])

"""ModelConfig: validation, the dict form, and protobuf text that Triton's own model_config_pb2 parses back."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from quantserve.artifact import TensorSpec
from quantserve.errors import QuantserveError
from serving.model_config import (
    DynamicBatching,
    InstanceGroup,
    ModelConfig,
    TensorConfig,
    default_preferred_batch_sizes,
    merge_extra,
    parse_config,
    to_protobuf_text,
    write_config,
)

GOLDEN = Path(__file__).parents[1] / "assets" / "serving" / "config_embedded.pbtxt"


def embedded_config(**changes: object) -> ModelConfig:
    fields: dict = {
        "name": "digits_int8",
        "runtime": {"backend": "python"},
        "inputs": [TensorConfig("tokens", "int64", (-1,), allow_ragged_batch=True)],
        "outputs": [TensorConfig("logits", "float32", (10,))],
        "max_batch_size": 32,
        "dynamic_batching": DynamicBatching((4, 8, 16, 32), 500),
        "instance_groups": [InstanceGroup("KIND_CPU", 2)],
        "parameters": {"intra_op_threads": "2"},
    }
    fields.update(changes)
    return ModelConfig(**fields)


def test_written_config_parses_with_triton_model_config_pb2(tmp_path: Path) -> None:
    path = write_config(embedded_config().to_dict(), tmp_path)
    message = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    assert message.name == "digits_int8" and message.backend == "python"
    assert message.max_batch_size == 32
    assert message.input[0].data_type == model_config_pb2.TYPE_INT64
    assert list(message.input[0].dims) == [-1] and message.input[0].allow_ragged_batch
    assert message.output[0].data_type == model_config_pb2.TYPE_FP32 and list(message.output[0].dims) == [10]
    assert list(message.dynamic_batching.preferred_batch_size) == [4, 8, 16, 32]
    assert message.dynamic_batching.max_queue_delay_microseconds == 500
    assert message.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert message.instance_group[0].count == 2
    assert message.parameters["intra_op_threads"].string_value == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["config.pbtxt"]  # no temp file left behind


def test_config_text_matches_golden_file() -> None:
    assert to_protobuf_text(embedded_config().to_dict()) == GOLDEN.read_text()


def test_round_trip_through_text_keeps_the_dict(tmp_path: Path) -> None:
    config = embedded_config().to_dict()
    parsed = parse_config(write_config(config, tmp_path))
    assert parsed["input"][0]["dims"] == ["-1"]  # int64 fields come back as strings in proto JSON
    assert parsed["dynamic_batching"]["preferred_batch_size"] == [4, 8, 16, 32]
    assert parsed["instance_group"] == [{"kind": "KIND_CPU", "count": 2}]


def test_optimization_passthrough_and_target_extras_parse() -> None:
    accelerator = {"name": "tensorrt", "parameters": {"precision_mode": "INT8"}}
    optimization = {"execution_accelerators": {"gpu_execution_accelerator": [accelerator]}}
    config = embedded_config(runtime={"platform": "onnxruntime_onnx"}, optimization=optimization)
    extra = {"parameters": {"extra_key": {"string_value": "x"}}}
    message = text_format.Parse(to_protobuf_text(merge_extra(config.to_dict(), extra)), model_config_pb2.ModelConfig())
    assert (
        message.optimization.execution_accelerators.gpu_execution_accelerator[0].parameters["precision_mode"] == "INT8"
    )
    assert set(message.parameters) == {"intra_op_threads", "extra_key"}


def test_a_field_triton_does_not_know_is_refused() -> None:
    with pytest.raises(QuantserveError, match="not a valid Triton ModelConfig"):
        to_protobuf_text({**embedded_config().to_dict(), "max_batch": 4})


def test_from_spec_drops_the_batch_axis_and_marks_dynamic_dims() -> None:
    spec = TensorSpec("tokens", "int64", ("batch", "sequence", 16))
    assert TensorConfig.from_spec(spec, batched=True).dims == (-1, 16)
    assert TensorConfig.from_spec(spec, batched=False).dims == (-1, -1, 16)


def test_one_value_per_sample_is_served_as_dims_1_reshaped_to_the_models_empty_shape() -> None:
    label = TensorConfig.from_spec(TensorSpec("label", "int64", ("batch",)), batched=True)
    assert (label.dims, label.reshape) == ((1,), ())
    text = to_protobuf_text(embedded_config(outputs=[TensorConfig("logits", "float32", (10,)), label]).to_dict())
    parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert list(parsed.output[1].dims) == [1] and parsed.output[1].HasField("reshape")
    assert list(parsed.output[1].reshape.shape) == []


@pytest.mark.parametrize(
    ("max_batch", "expected"),
    [(32, (4, 8, 16, 32)), (8, (1, 2, 4, 8)), (48, (4, 8, 16, 32, 48)), (1, (1,))],
)
def test_default_preferred_batch_sizes(max_batch: int, expected: tuple[int, ...]) -> None:
    assert default_preferred_batch_sizes(max_batch) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "../escape"}, "invalid model name '../escape'"),
        ({"runtime": {"engine": "x"}}, "runtime must be one of"),
        (
            {"dynamic_batching": DynamicBatching((64,), 100)},
            r"preferred batch sizes \[64\] exceed the max batch size 32",
        ),
        ({"max_batch_size": 0}, "dynamic batching needs max batch size > 0"),
        ({"outputs": [TensorConfig("tokens", "float32", (2,))]}, r"tensor names used twice: \['tokens'\]"),
        ({"outputs": []}, "needs at least one input and one output"),
    ],
)
def test_invalid_configs_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(QuantserveError, match=message):
        embedded_config(**changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TensorConfig("x", "complex64", (2,)), "dtype 'complex64' Triton cannot carry"),
        (lambda: TensorConfig("x", "float32", (0,)), r"invalid dims \[0\]"),
        (lambda: DynamicBatching((4,), -1), "max queue delay must be ≥ 0"),
        (lambda: InstanceGroup("KIND_TPU", 1), "instance kind 'KIND_TPU'"),
        (lambda: InstanceGroup("KIND_CPU", 0), "instance count must be ≥ 1"),
    ],
)
def test_invalid_parts_are_refused(build: object, message: str) -> None:
    with pytest.raises(QuantserveError, match=message):
        build()  # type: ignore[operator]


def test_queue_and_version_policies_reach_the_config() -> None:
    from serving.model_config import QueuePolicy, VersionPolicy

    batching = DynamicBatching((4, 8), 100, QueuePolicy(max_queue_size=32, timeout_us=5000))
    config = embedded_config(dynamic_batching=batching, version_policy=VersionPolicy(specific=(3,)))
    message = text_format.Parse(to_protobuf_text(config.to_dict()), model_config_pb2.ModelConfig())
    queue = message.dynamic_batching.default_queue_policy
    assert (queue.max_queue_size, queue.default_timeout_microseconds) == (32, 5000)
    assert queue.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT and not queue.allow_timeout_override
    assert list(message.version_policy.specific.versions) == [3]
    unbounded = DynamicBatching((4,), 100).to_dict()
    assert "default_queue_policy" not in unbounded
    with pytest.raises(QuantserveError, match="max queue size must be ≥ 0"):
        QueuePolicy(max_queue_size=-1)
    with pytest.raises(QuantserveError, match="live versions must be ≥ 1"):
        VersionPolicy(latest=0)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x\n", "", "a" * 129, "é"])
def test_unsafe_model_names_are_refused(name: str) -> None:
    from serving.model_config import check_model_name

    with pytest.raises(QuantserveError, match="invalid model name"):
        check_model_name(name)


@pytest.mark.parametrize("version", ["0", "-1", "../1", "1/..", "1.0", " 1", "01"])
def test_unsafe_versions_are_refused(version: str) -> None:
    from serving.model_config import check_version_name

    with pytest.raises(QuantserveError, match="invalid model version"):
        check_version_name(version)


def test_a_scalar_of_a_model_that_does_not_batch_is_refused_before_triton_refuses_to_load_it() -> None:
    """tritonserver 2.51 loads no rank-0 tensor in a max_batch_size 0 model ("scalar tensors are not supported"):
    deploy wrote dims [] and the model never loaded; batched, a rank-0 sample is dims [1] reshaped to []."""
    from quantserve.artifact import TensorSpec
    from serving.model_config import TensorConfig

    assert TensorConfig.from_spec(TensorSpec("s", "float32", ("batch",)), batched=True).reshape == ()
    with pytest.raises(QuantserveError, match=r"^tensor 's' is a scalar \(rank 0\), and Triton serves no scalar"):
        TensorConfig.from_spec(TensorSpec("s", "float32", ()), batched=False)

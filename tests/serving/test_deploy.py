"""deploy: a Triton model repository written atomically, versions that increment, clear errors."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from serving_models import make_build_dir
from tritonclient.grpc import model_config_pb2

import serving.deploy
from quantserve.artifact import Manifest
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.build_parameters import PRECISION_PARAMETER, recorded_precision
from serving.deploy import deploy, existing_versions
from serving.deploy_config import ServingPolicy
from serving.model_config import QueuePolicy, parse_config
from serving.repository import STAGING_PREFIX
from serving.repository_lock import LOCK_NAME, VERSION_RECORD
from serving.versions import DEPLOY_RECORD as VERSION_RECORD_FILE
from serving.versions import rollback, served_versions


def test_deploy_writes_config_and_version(dense_build: Path, tmp_path: Path) -> None:
    result = deploy(dense_build, tmp_path / "repo", "dense", max_batch=16, max_queue_delay_us=300, instances=2)
    assert result.version == 1 and result.version_dir == tmp_path / "repo" / "dense" / "1"
    assert {"model.onnx", "model.py", "manifest.json", "deploy.json"} <= {p.name for p in result.version_dir.iterdir()}
    message = text_format.Parse(result.config_path.read_text(), model_config_pb2.ModelConfig())
    assert message.name == "dense" and message.backend == "python" and message.max_batch_size == 16
    assert [(t.name, list(t.dims)) for t in message.input] == [("x", [8])]
    assert [(t.name, list(t.dims)) for t in message.output] == [("probs", [4]), ("label", [1])]
    assert message.output[1].HasField("reshape") and list(message.output[1].reshape.shape) == []
    assert list(message.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]
    assert message.dynamic_batching.max_queue_delay_microseconds == 300
    assert message.instance_group[0].count == 2
    record = json.loads((result.version_dir / "deploy.json").read_text())
    assert record["source"] == str(dense_build.resolve()) and record["version"] == 1


def test_versions_increment_past_the_highest(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert deploy(dense_build, repo, "dense").version == 1
    (repo / "dense" / "7").mkdir()
    assert deploy(dense_build, repo, "dense", preferred=[8, 32]).version == 8
    assert existing_versions(repo / "dense") == [1, 7, 8]


def test_sequence_inputs_are_ragged_with_the_batching_mode(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build", "sequence")
    result = deploy(build, tmp_path / "repo", "seq", ragged_batching="pad", check_pad=False)  # its mean changes
    message = text_format.Parse(result.config_path.read_text(), model_config_pb2.ModelConfig())
    assert message.input[0].allow_ragged_batch and list(message.input[0].dims) == [-1, 4]
    assert message.parameters["ragged_batching"].string_value == "pad"


def test_the_builds_precision_is_recorded_in_the_config_where_clients_read_it(tmp_path: Path) -> None:
    """The report told INT8 from FP32 by the model's name: an INT8 build deployed as `sw_fp32` was taken for FP32."""
    build = make_build_dir(tmp_path / "build")
    manifest = Manifest.load(build)
    manifest.precision = "int8"
    manifest.save(build)
    result = deploy(build, tmp_path / "repo", "sw_fp32")
    message = text_format.Parse(result.config_path.read_text(), model_config_pb2.ModelConfig())
    assert message.parameters[PRECISION_PARAMETER].string_value == "int8"
    assert recorded_precision(parse_config(result.config_path)) == "int8"
    assert recorded_precision({"name": "older"}) is None  # deployed before it was recorded, or by another tool


def test_failure_mid_copy_leaves_no_version(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    before = (repo / "dense" / "config.pbtxt").read_text()
    copied: list[Path] = []

    def copy_then_fail(source: Path, target: Path) -> None:
        if copied:
            raise OSError(28, "No space left on device")
        copied.append(target)
        target.write_bytes(source.read_bytes()[:10])  # a partial file

    monkeypatch.setattr(serving.deploy, "copy_file", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        deploy(dense_build, repo, "dense", max_batch=64)
    assert sorted(p.name for p in (repo / "dense").iterdir()) == [VERSION_RECORD, LOCK_NAME, "1", "config.pbtxt"]
    assert (repo / "dense" / "config.pbtxt").read_text() == before


def test_failure_on_first_deploy_leaves_no_model(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(source: Path, target: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(serving.deploy, "copy_file", fail)
    with pytest.raises(OSError):
        deploy(dense_build, tmp_path / "repo", "dense")
    assert list((tmp_path / "repo").iterdir()) == []


KILLED_DEPLOY = """
import os, signal, sys
sys.path[:0] = [{root!r}, {tests!r}]
import serving.deploy
copy = serving.deploy.copy_file
def copy_then_die(source, target):
    copy(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
serving.deploy.copy_file = copy_then_die
serving.deploy.deploy({build!r}, {repo!r}, "dense")
"""


def test_process_killed_mid_deploy_leaves_no_version(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root, tests = Path(__file__).parents[2], Path(__file__).parent
    script = KILLED_DEPLOY.format(root=str(root), tests=str(tests), build=str(dense_build), repo=str(repo))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    leftovers = [p.name for p in (repo / "dense").iterdir()]
    assert existing_versions(repo / "dense") == []
    ours = ("config.pbtxt", LOCK_NAME, VERSION_RECORD)
    assert all(name.startswith(STAGING_PREFIX) for name in leftovers if name not in ours)
    # The next deploy cleans the dead deploy's staging folder and takes version 1.
    assert deploy(dense_build, repo, "dense").version == 1
    assert not [p for p in (repo / "dense").iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_a_killed_config_writers_temp_file_is_removed_by_the_next_deploy(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = repo / "dense" / f".config.pbtxt.{int(dead.stdout)}-0a1b2c3d"  # as write_config names it
    live = repo / "dense" / f".config.pbtxt.{os.getpid()}-0a1b2c3d"  # a writer still running keeps its file
    for path in (stale, live):
        path.write_text("max_batch_size: 8\n")
    assert deploy(dense_build, repo, "dense").version == 2
    assert not stale.exists() and live.exists()


def test_unwritable_repo_is_one_clear_error(dense_build: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QuantserveError, match="cannot create the model repository"):
        deploy(dense_build, blocker / "repo", "dense")


def test_read_only_repo_is_one_clear_error(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repo.chmod(0o555)
    # root may write anywhere; ask the same question the deploy asks, answered as for an unprivileged user
    monkeypatch.setattr(serving.deploy.os, "access", lambda path, mode: False)
    with pytest.raises(QuantserveError, match="model repository is not writable"):
        deploy(dense_build, repo, "dense")
    assert list(repo.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("../evil", "invalid model name"), ("", "invalid model name"), ("a/b", "invalid model name")],
)
def test_invalid_name_writes_nothing(dense_build: Path, tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(QuantserveError, match=message):
        deploy(dense_build, tmp_path / "repo", name)
    assert not (tmp_path / "repo").exists()


def test_missing_build_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="build folder not found"):
        deploy(tmp_path / "nope", tmp_path / "repo", "dense")
    assert not (tmp_path / "repo").exists()


def test_missing_model_file_writes_nothing(dense_build: Path, tmp_path: Path) -> None:
    (dense_build / "model.onnx").unlink()
    with pytest.raises(QuantserveError, match="files the deploy needs are missing"):
        deploy(dense_build, tmp_path / "repo", "dense")
    assert not (tmp_path / "repo").exists()


def test_bad_batching_options_write_nothing(dense_build: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"preferred batch sizes \[64\] exceed the max batch size 32"):
        deploy(dense_build, tmp_path / "repo", "dense", preferred=[8, 64])
    with pytest.raises(QuantserveError, match="instance count must be ≥ 1"):
        deploy(dense_build, tmp_path / "repo", "dense", instances=0)
    assert not (tmp_path / "repo").exists()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its bytes (None for a folder): equal trees are byte-identical."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("step", ["copy_file", "write_json", "write_config", "rename_to_next_version"])
def test_disk_full_at_any_step_leaves_the_repository_byte_identical(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=4)
    deploy(dense_build, repo, "dense", max_batch=8)
    before = tree(repo)
    monkeypatch.setattr(serving.deploy, step, _no_space)
    with pytest.raises(OSError, match="No space left"):
        deploy(dense_build, repo, "dense", max_batch=16, policy=ServingPolicy(QueuePolicy(8, 1000)))
    assert tree(repo) == before


def test_bounded_queue_and_version_policy_are_written(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    args = ["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-queue-size", "16"]
    assert main([*args, "--queue-timeout-us", "50000", "--live-versions", "2"]) == 0
    message = text_format.Parse((repo / "dense" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    queue = message.dynamic_batching.default_queue_policy
    assert queue.max_queue_size == 16 and queue.default_timeout_microseconds == 50000
    assert queue.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
    assert message.version_policy.latest.num_versions == 2
    assert main([*args, "--max-batch", "0"]) == 2  # a queue policy lives in the dynamic batcher


def test_preferred_sizes_without_dynamic_batching_are_refused(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-batch 0 --preferred-batch 4` dropped the sizes in silence and deployed something else than asked."""
    args = ["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense", "--max-batch", "0"]
    assert main([*args, "--preferred-batch", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "quantserve: error: preferred batch sizes (--preferred-batch) need --max-batch > 0 (dynamic batching)"
    )
    assert not (tmp_path / "repo" / "dense").exists()


def test_old_versions_are_pruned_beyond_the_limit(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(4):
        deploy(dense_build, repo, "dense", policy=ServingPolicy(keep_versions=2))
    assert existing_versions(repo / "dense") == [3, 4]
    assert sorted(p.name for p in (repo / "dense").iterdir()) == [VERSION_RECORD, LOCK_NAME, "3", "4", "config.pbtxt"]
    with pytest.raises(QuantserveError, match="--keep-versions 1 is below --live-versions 2"):
        ServingPolicy(live_versions=2, keep_versions=1)


def test_rollback_serves_the_previous_version_and_a_deploy_rolls_forward(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    assert served_versions(repo / "dense") == [3]
    assert rollback(repo, "dense") == 2 and served_versions(repo / "dense") == [2]
    assert rollback(repo, "dense") == 1 and served_versions(repo / "dense") == [1]
    assert rollback(repo, "dense", to="3") == 3 and served_versions(repo / "dense") == [3]
    with pytest.raises(QuantserveError, match=r"has no version 9 \(versions: 1, 2, 3\)"):
        rollback(repo, "dense", to=9)
    assert existing_versions(repo / "dense") == [1, 2, 3]  # a rollback moves no folder
    rollback(repo, "dense")
    assert deploy(dense_build, repo, "dense").version == 4 and served_versions(repo / "dense") == [4]


def test_rollback_serves_the_version_with_its_own_config(tmp_path: Path) -> None:
    """Rolled back under the newer version's config (its inputs, batch size, instances), the older version was
    served with a config that fits another model: every request failed."""
    from serving_models import make_build_dir

    from serving.model_config import CONFIG_NAME, parse_config

    repo = tmp_path / "repo"
    deploy(make_build_dir(tmp_path / "b" / "dense"), repo, "m", max_batch=64, instances=1)
    first = parse_config(repo / "m" / CONFIG_NAME)
    sequence = make_build_dir(tmp_path / "b" / "sequence", "sequence")
    deploy(sequence, repo, "m", max_batch=8, instances=2, allow_interface_change=True)
    assert parse_config(repo / "m" / CONFIG_NAME)["input"] != first["input"]
    assert rollback(repo, "m") == 1
    config = parse_config(repo / "m" / CONFIG_NAME)
    assert config == {**first, "version_policy": {"specific": {"versions": ["1"]}}}
    assert rollback(repo, "m", to=2) == 2
    assert parse_config(repo / "m" / CONFIG_NAME)["max_batch_size"] == 8


def test_a_version_that_changes_the_interface_is_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deployed live, a version whose input changed shape failed every request made for the one served."""
    from serving_models import make_build_dir

    repo = tmp_path / "repo"
    deploy(make_build_dir(tmp_path / "b" / "dense"), repo, "m")
    before = tree(repo)
    sequence = make_build_dir(tmp_path / "b" / "sequence", "sequence")
    argv = ["deploy", str(sequence), "--repo", str(repo), "--name", "m"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: {repo / 'm'}: this version changes the model's interface: input ")
    assert "removed; input " in err and "(and " in err and err.rstrip().endswith("pass --allow-interface-change")
    assert tree(repo) == before, "nothing written"
    assert main([*argv, "--allow-interface-change"]) == 0
    assert existing_versions(repo / "m") == [1, 2]
    assert main(["deploy", str(sequence), "--repo", str(repo), "--name", "m"]) == 0  # the same interface again


def test_deployed_files_are_readable_by_other_users(dense_build: Path, tmp_path: Path) -> None:
    """A Triton container running as another user reads the repository: no 0600 file (mkstemp's mode) in it."""
    old = os.umask(0o022)
    try:
        result = deploy(dense_build, tmp_path / "repo", "dense")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [result.config_path, *result.version_dir.iterdir()]}
    assert modes == dict.fromkeys(modes, 0o644) and "config.pbtxt" in modes


def test_a_full_disk_names_the_model_folder_being_written(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """shutil's copy names the source file when the disk fills; the line names the repository folder."""

    def disk_full(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    before = tree(repo)
    monkeypatch.setattr(os, "sendfile", disk_full)  # what shutil.copyfile writes with on Linux
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {repo / 'dense'}: no space left on device; nothing written: its versions and config are "
        "as they were\n"
    )
    assert tree(repo) == before


def test_the_source_identity_covers_a_large_references_weights_file(tmp_path: Path) -> None:
    """Two references of one graph whose weights live in `fp32.onnx.data` differ only there: the recorded source
    must differ too (it had hashed the graph file alone, so the verdict would have paired two different models)."""
    import onnx
    from onnx import numpy_helper
    from serving_models import write_dense_onnx

    from optimizer.onnx_files import save_external
    from serving.deploy import source_identity

    identities = []
    for seed in (0, 1):
        build = tmp_path / f"b{seed}"
        build.mkdir()
        write_dense_onnx(build / "dense.onnx")
        model = onnx.load(str(build / "dense.onnx"))
        weights = model.graph.initializer[0]
        changed = np.random.default_rng(seed).normal(size=numpy_helper.to_array(weights).shape).astype(np.float32)
        weights.CopyFrom(numpy_helper.from_array(changed, weights.name))
        save_external(model, build / "fp32.onnx", "fp32.onnx.data", threshold=0)
        identities.append(source_identity(build, {"reference": "fp32.onnx"}))
    graphs = {(tmp_path / f"b{seed}" / "fp32.onnx").read_bytes() for seed in (0, 1)}
    assert len(graphs) == 1  # the graph files are byte-identical: only the weights files differ
    assert identities[0] and identities[1] and identities[0].startswith("sha256:") and identities[0] != identities[1]


def test_a_version_with_a_lower_max_batch_is_refused_unless_allowed(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deployed live at --max-batch 4 over 32, every 8-row request failed from the swap on; deploy said nothing."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "m", max_batch=32)
    before = tree(repo)
    argv = ["deploy", str(dense_build), "--repo", str(repo), "--name", "m", "--max-batch", "4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "this version changes the model's interface: max_batch_size 32 → 4 (requests of 5 to 32 rows" in err
    assert tree(repo) == before, "nothing written"
    assert main([*argv[:-1], "64"]) == 0, "a higher limit takes every request the old one did"
    assert main([*argv, "--allow-interface-change"]) == 0
    assert parse_config(repo / "m" / "config.pbtxt")["max_batch_size"] == 4


def test_a_new_version_without_serving_flags_keeps_the_models_serving_settings(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One config serves every version: deployed without the flags, a new version reset it to the defaults in
    silence (the demo's model went from max batch 64 to 32 and 2 instances to 1, session 40)."""
    repo = tmp_path / "repo"
    argv = ["deploy", str(dense_build), "--repo", str(repo), "--name", "m"]
    assert main([*argv, "--max-batch", "64", "--instances", "2", "--max-queue-delay-us", "2000"]) == 0
    first = parse_config(repo / "m" / "config.pbtxt")
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    kept = parse_config(repo / "m" / "config.pbtxt")
    assert kept["max_batch_size"] == 64 and kept["instance_group"][0]["count"] == 2
    assert kept["dynamic_batching"] == first["dynamic_batching"]
    note = "note: kept the serving settings of 'm' from its config: --instances 2, --max-batch 64, --preferred-batch "
    assert note in out
    assert "--max-queue-delay-us 2000" in out
    assert main([*argv, "--instances", "1", "--max-queue-delay-us", "100"]) == 0
    changed = parse_config(repo / "m" / "config.pbtxt")
    assert changed["instance_group"][0]["count"] == 1 and changed["max_batch_size"] == 64
    assert int(changed["dynamic_batching"]["max_queue_delay_microseconds"]) == 100
    assert "--instances" not in capsys.readouterr().out.split("note: kept")[1], "a flag given is not kept"
    fresh = tmp_path / "fresh"
    assert main(["deploy", str(dense_build), "--repo", str(fresh), "--name", "m"]) == 0
    assert "note: kept" not in capsys.readouterr().out, "a first deploy has nothing to keep"
    assert parse_config(fresh / "m" / "config.pbtxt")["max_batch_size"] == 32


def test_a_rollback_to_a_version_without_its_record_under_a_config_that_cannot_serve_it_is_refused(
    tmp_path: Path,
) -> None:
    """A version with no deploy.json (hand-placed, an older deploy) took the config there now: after an interface
    change rollback said "now serves version 1" under version 2's config and every request failed (session 40)."""
    from serving_models import make_build_dir

    repo = tmp_path / "repo"
    deploy(make_build_dir(tmp_path / "b" / "dense"), repo, "m")
    deploy(make_build_dir(tmp_path / "b" / "sequence", "sequence"), repo, "m", allow_interface_change=True)
    (repo / "m" / "1" / VERSION_RECORD_FILE).unlink()
    before = tree(repo)
    with pytest.raises(QuantserveError) as refused:
        rollback(repo, "m")
    message = str(refused.value)
    assert message.startswith(f"{repo / 'm'}: version 1 has no record of its own config (1/deploy.json"), message
    assert "does not fit it: " in message
    assert message.endswith("nothing rolled back: deploy its build again to serve it")
    assert tree(repo) == before, "the config is left as it was"

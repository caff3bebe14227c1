"""Deploy a built artifact into a Triton model repository: `NAME/config.pbtxt` and `NAME/<version>/…`.

A deploy is atomic: the version folder is assembled under a hidden staging folder inside the
model folder (Triton skips folder names that are not integers), fsynced, then renamed into
place, so a numbered version appears complete or not at all, even if the process is killed.
Deploys of one model may run at once: the model folder's lock (serving.repository_lock) is held while a
version number is taken, the config written and the version renamed in, and while a failed deploy takes
its own version out again, so none of them ever removes or overwrites another's work.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer.cpu_isa import cpu_flags
from optimizer.graph_words import read_graph_words, words_record
from optimizer.nan_inputs import NAN_INPUTS
from optimizer.onnx_files import model_sha256
from optimizer.speed import cpu_model
from optimizer.targets import TritonLayout, get_target
from optimizer.token_lengths import LENGTH_INPUT
from quantserve.artifact import (
    GRAPH_OUTPUTS,
    MANIFEST_NAME,
    STATE_PAIRS,
    TYPED_KINDS,
    Artifact,
    Manifest,
    TensorSpec,
)
from quantserve.errors import QuantserveError
from serving.batch_axes import check_batch_axes, check_model_batch_axes, max_batch_for
from serving.batch_memory import batch_memory_line
from serving.build_checks import (
    check_build_model,
    check_cpu_session,
    check_onnx_file,
    int8_isa_warning,
    is_onnx,
    model_file_in,
)
from serving.build_parameters import PRECISION_PARAMETER, SOURCE_PARAMETER, speed_parameter
from serving.config_changes import interface_changes
from serving.config_check import interface_change
from serving.deploy_files import (
    copy_file,
    fsync_path,
    naming_the_repository,
    prepare_model_dir,
    prepare_repo_dir,
    write_json,
)
from serving.deploy_numbers import check_numbers
from serving.drift_parameter import drift_missed_parameter, with_version_builds
from serving.gates_parameter import gates_parameter
from serving.graph_parameter import graph_parameter
from serving.kinds_parameter import kinds_parameter
from serving.length_parameter import length_parameter
from serving.model_config import (
    CONFIG_NAME,
    DynamicBatching,
    InstanceGroup,
    ModelConfig,
    QueuePolicy,
    TensorConfig,
    VersionPolicy,
    check_model_name,
    default_preferred_batch_sizes,
    merge_extra,
    parse_config,
    to_protobuf_text,
    write_config,
)
from serving.model_version import with_version_precisions
from serving.nan_parameter import nan_parameter
from serving.ragged_check import check_pad_exact
from serving.repository import STAGING_PREFIX, remove_stale_staging
from serving.repository_lock import FolderLockTimeout, model_folder_lock, remove_if_empty
from serving.scalar_tensors import check_scalars_servable, scalar_parameter, served_spec, wrap_staged_model
from serving.state_parameter import state_parameter
from serving.versions import (
    DEPLOY_RECORD,
    check_version_numbers,
    existing_versions,
    next_version,
    prune_versions,
    record_issued,
    remove_stale_pruned,
    restore_config,
)

# How the embedded Python backend batches requests of different lengths (optimizer/python_backend/model.py).
RAGGED_BATCHING = ("group", "pad")
KEEP_VERSIONS = 5  # version folders kept on disk for rollback
# Errors about the disk being written, not the file being read: a full disk is the repository's.


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


@dataclass(frozen=True)
class Deployment:
    """Where a deploy landed."""

    model_dir: Path
    version: int
    config_path: Path
    previous_config: bytes | None = None  # the config.pbtxt this deploy replaced (None: it wrote the first)
    written_config: bytes = b""  # the config.pbtxt this deploy wrote
    previous_versions: tuple[int, ...] = ()  # the versions on disk when this deploy renamed its own in
    pruned: tuple[int, ...] = ()  # the old version folders this deploy removed (`ServingPolicy.keep_versions`)
    unpruned: str = ""  # why it removed none where it should have (`prune_after_deploy`), or ""
    memory_warning: str = ""  # a full batch would outgrow this machine's memory (`serving.batch_memory`), or ""
    isa_warning: str = ""  # 8-bit INT8 weights verified where they do not saturate, served here where they do, or ""

    @property
    def version_dir(self) -> Path:
        return self.model_dir / str(self.version)


def deploy(
    build_dir: Path | str,
    repo: Path | str,
    name: str,
    max_batch: int | None = None,
    max_queue_delay_us: int = 500,
    preferred: Sequence[int] | None = None,
    instances: int = 1,
    ragged_batching: str = "group",
    policy: ServingPolicy | None = None,
    prune: bool = True,
    allow_interface_change: bool = False,
    check_pad: bool = True,
    allow_batch_cut: bool = False,
) -> Deployment:
    """Write the artifact in `build_dir` into `repo/name` as its next version, with a fresh config.pbtxt.

    Everything is checked before anything is written (the model file too: a model Triton cannot load
    would take the model down at the next restart); the slow copy happens in staging, and the config
    and the version folder each appear by one atomic rename. `prune=False` keeps old folders, so a
    caller can still `withdraw` this version and leave the repository as it was. A version whose inputs or outputs
    differ from the config there now (its clients' requests would fail) is refused unless `allow_interface_change`.
    A lower max_batch_size than the config's there now (or any over its 0, no row limit) is such a change too, unless
    `allow_batch_cut` (tune's winner, which says so itself). `max_batch` None: DEFAULT_MAX_BATCH, or 0 for an
    --unbatched build (`max_batch_for`). `check_pad`: ragged_batching "pad" is refused where it would change the
    model's answers (serving.ragged_check).
    """
    check_model_name(name)
    policy = policy or ServingPolicy()
    queue = (policy.queue.max_queue_size, policy.queue.timeout_us)
    check_numbers(max_batch or 0, max_queue_delay_us, preferred, instances, queue, policy.live_versions)
    build_dir, repo = Path(build_dir), Path(repo)
    artifact = load_artifact(build_dir)
    max_batch = max_batch_for(artifact.manifest, max_batch)
    target = get_target(artifact.manifest.target)
    check_scalars_servable(artifact.manifest, artifact.path, max_batch)
    check_onnx_file(artifact.path)
    check_build_model(artifact)
    if max_batch > 0 and is_onnx(artifact.path):
        check_model_batch_axes(artifact.path)
    target.check_deploy(artifact, max_batch)
    layout = target.triton_layout(artifact)
    missing = [str(p) for p in layout.version_files.values() if not Path(p).is_file()]
    if missing:
        raise QuantserveError(f"{build_dir}: files the deploy needs are missing: {', '.join(missing)}")
    if is_onnx(artifact.path) and layout.instance_kind == "KIND_CPU":
        check_cpu_session(artifact.path)
    if check_pad and ragged_batching == "pad" and pads_ragged(artifact.manifest, layout, max_batch):
        check_pad_exact(artifact, name)
    memory_warning = batch_memory_line(artifact.manifest.stages, max_batch, instances)  # warned, not refused
    on_cpu = layout.instance_kind == "KIND_CPU"  # the local tritonserver serves it on this machine's CPU
    isa_warning = int8_isa_warning(artifact.manifest, name, cpu_flags(), cpu_model()) if on_cpu else ""
    source = source_identity(build_dir, artifact.manifest.files)
    graph_words_of_older_build(build_dir, artifact.manifest)
    config = build_config(
        artifact.manifest, layout, name, max_batch, max_queue_delay_us, preferred, instances, ragged_batching, policy
    )
    config.parameters.update({SOURCE_PARAMETER: source} if source else {})
    config_dict = merge_extra(config.to_dict(), layout.config_extra)
    to_protobuf_text(config_dict)  # fails here, before anything is written, if Triton would reject it
    if not allow_interface_change:
        older = older_unbatched_config(config_dict, artifact.manifest) if artifact.manifest.unbatched else None
        check_same_interface(repo / name, config_dict, older, batch_limit=not allow_batch_cut)
    staging = open_staging(repo, name)
    try:
        record = deploy_record(build_dir, artifact.manifest, config_dict)
        stage_version(staging, layout.version_files, artifact.manifest, record, max_batch)
        with model_folder_lock(staging.parent):  # our staging folder in it: nobody removes the folder now
            installed = install_version(staging, config_dict, record)
            deployment = replace(installed, memory_warning=memory_warning, isa_warning=isa_warning)
    except OSError as exc:
        abandon_staging(staging)
        raise naming_the_repository(exc, staging.parent) from exc
    except BaseException as exc:
        abandon_staging(staging, tidy=not isinstance(exc, FolderLockTimeout))  # not a second wait on that lock
        raise
    if prune:
        pruned, unpruned = prune_after_deploy(deployment.model_dir, policy.keep_versions)
        return replace(deployment, pruned=tuple(pruned), unpruned=unpruned)
    return deployment


def prune_after_deploy(model_dir: Path, keep: int) -> tuple[list[int], str]:
    """The old version folders removed once a new version is in place, and, where the model folder's lock was held
    too long by another process, why none were: the new version is deployed all the same, so the lock's own refusal
    ("nothing was changed") would be untrue (session 54)."""
    try:
        return prune_versions(model_dir, keep), ""
    except FolderLockTimeout as exc:
        return [], (
            f"old versions of {model_dir} left in place (--keep-versions {keep}): gave up waiting for its lock after "
            f"{exc.waited_s:g} s, held by {exc.holder}; the next deploy removes them"
        )


def check_same_interface(
    model_dir: Path, config: dict[str, Any], older: dict[str, Any] | None = None, batch_limit: bool = True
) -> None:
    """Refuse a version whose inputs or outputs differ from those the model's config declares now: deployed live
    (an input 16 wide → 32), every client request failed at once, and nothing said why beforehand. `older`: the
    same build's config as an earlier quantserve wrote it (`older_unbatched_config`), which the config there may be.
    `batch_limit`: a lower max_batch_size is refused too (`batch_limit_cut`)."""
    config_path = model_dir / CONFIG_NAME
    if not config_path.is_file():
        return
    served = parse_config(config_path)
    change = interface_change(served, config, batch_limit)
    if change and not (older is not None and not interface_changes(served, older)):
        raise QuantserveError(
            f"{model_dir}: this version {change}. Deploy it under another --name, or pass --allow-interface-change"
        )


def older_unbatched_config(config: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    """`config` of an --unbatched build with the inputs deploy wrote before they said one row a request (axis 0 as
    the manifest has it, `request_inputs`): redeploying such a build over its older config is no interface change."""
    return {**config, "input": [TensorConfig.from_spec(served_spec(t), False).to_dict() for t in manifest.inputs]}


def config_bytes(model_dir: Path) -> bytes | None:
    path = model_dir / CONFIG_NAME
    return path.read_bytes() if path.is_file() else None


def load_artifact(build_dir: Path) -> Artifact:
    """The built model in `build_dir`, as its manifest describes it."""
    if not build_dir.is_dir():
        raise QuantserveError(f"{build_dir}: build folder not found; run 'quantserve optimize' first")
    manifest = Manifest.load(build_dir)
    model_file = manifest.files.get("model")
    if not model_file:
        raise QuantserveError(f"{build_dir / MANIFEST_NAME}: names no model file (files.model)")
    return Artifact(model_file_in(build_dir, model_file), manifest)


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
    (`serving.graph_parameter`), the kinds, the length input and the gates the build was told
    (`serving.kinds_parameter`, `serving.length_parameter`, `serving.gates_parameter`), the inputs whose NaN it
    accepts (`serving.nan_parameter`), its in-process speed verdict (`serving.build_parameters`), the drift budget it
    missed (`serving.drift_parameter`), the scalars a model that does not batch serves as [1]
    (`serving.scalar_tensors`), and how the Python backend batches requests of different lengths where it must."""
    parameters = {PRECISION_PARAMETER: manifest.precision} if manifest.precision else {}
    parameters.update(state_parameter(manifest.extra.get(STATE_PAIRS) or []))  # evaluate runs it as a stream
    parameters.update(graph_parameter(manifest.extra.get(GRAPH_OUTPUTS)))  # evaluate reads kinds as optimize did
    parameters.update(kinds_parameter(manifest.extra.get(TYPED_KINDS)))  # … and takes the kinds it was told
    parameters.update(length_parameter(manifest.extra.get(LENGTH_INPUT)))  # … and the length input it was told
    parameters.update(gates_parameter(manifest.verification))  # … and the gates it was judged under
    parameters.update(nan_parameter(manifest.extra.get(NAN_INPUTS)))  # the sending commands accept NaN there
    parameters.update(speed_parameter((manifest.verification or {}).get("speed")))  # a report's speed verdict
    parameters.update(drift_missed_parameter(manifest.verification))  # a build shipped with --keep-failing
    scalars = [] if batched else [t.name for t in [*manifest.inputs, *manifest.outputs] if not t.shape]
    parameters.update(scalar_parameter(scalars))  # the client sends and answers them as the model's rank 0
    return {**parameters, **({"ragged_batching": ragged_batching} if ragged_batching else {})}


def graph_words_of_older_build(build_dir: Path, manifest: Manifest) -> None:
    """A build by a quantserve before graph words were recorded gets them from its FP32 reference, the file optimize
    reads them from, so `evaluate` judges its served outputs as optimize did (`serving.graph_parameter`)."""
    reference = manifest.files.get("reference")
    path = build_dir / reference if reference else None
    if GRAPH_OUTPUTS not in manifest.extra and path is not None and path.is_file() and is_onnx(path):
        manifest.extra[GRAPH_OUTPUTS] = words_record(read_graph_words(path))


def source_identity(build_dir: Path, files: Mapping[str, str]) -> str | None:
    """The source model's identity: the sha256 of the build's FP32 reference (`files.reference`, the exported and
    fused source model, the same bytes in an INT8 and an FP32 build of one model); None where the build has none.

    A large reference keeps its weights in a file beside it (`<file>.data`): two models of one graph and different
    weights would share the graph file's hash, so the weights files' hashes are folded in, by name."""
    reference = files.get("reference")  # a manifest's `files`
    path = build_dir / reference if reference else None
    return f"sha256:{model_sha256(path)}" if path is not None and path.is_file() else None


def _has_dynamic_inner_dim(spec: TensorSpec) -> bool:
    return any(not isinstance(d, int) or d < 1 for d in spec.shape[1:])


def open_staging(repo: Path, name: str) -> Path:
    """Under the lock: the model folder (created if needed) and a new staging folder in it, so that no
    concurrent withdrawal or `serve` clean-up removes the folder between the two."""
    prepare_repo_dir(repo)
    model_dir = prepare_model_dir(repo, name)
    with model_folder_lock(model_dir, create=True):  # made again if a withdrawal removed it meanwhile
        remove_stale_staging(model_dir)
        remove_stale_pruned(model_dir)
        staging = model_dir / f"{STAGING_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
        try:
            check_version_numbers(model_dir)
            staging.mkdir()
        except (OSError, QuantserveError):
            remove_if_empty(model_dir)
            raise
    return staging


def abandon_staging(staging: Path, tidy: bool = True) -> None:
    """After a failed deploy: its staging folder goes, and the model folder too if that leaves it empty (`tidy`; not
    where its lock was given up on: `serve` removes such a folder)."""
    shutil.rmtree(staging, ignore_errors=True)
    if tidy:
        with model_folder_lock(staging.parent):
            remove_if_empty(staging.parent)


def stage_version(
    staging: Path, version_files: dict[str, Path], manifest: Manifest, record: dict[str, Any], max_batch: int = 1
) -> None:
    """Copy the version's files into its staging folder (the slow part: no lock held) and fsync them; a model that
    does not batch gets its scalars wrapped (`serving.scalar_tensors`)."""
    for file_name, source in version_files.items():
        copy_file(Path(source), staging / file_name)
    manifest = wrap_staged_model(staging, version_files, manifest, max_batch)
    manifest.save(staging)
    write_json(staging / DEPLOY_RECORD, record)
    fsync_path(staging)


def install_version(staging: Path, config: dict[str, Any], record: dict[str, Any]) -> Deployment:
    """Write the config, then rename the staged folder to the next version (the caller holds the lock). The config
    (and the record's copy, which a rollback or withdrawal writes back) records the versions on disk and their
    precisions and builds' records: one config serves them all, and its own precision, drift misses and speed are the
    new version's (`serving.model_version`, `serving.drift_parameter`)."""
    model_dir = staging.parent
    config_path = model_dir / CONFIG_NAME
    previous = config_bytes(model_dir)
    before = tuple(existing_versions(model_dir))
    config = with_version_builds(with_version_precisions(config, model_dir, before), model_dir, before)
    record["config"] = config
    write_config(config, model_dir)
    try:
        version = rename_to_next_version(staging, model_dir, record)
    except BaseException:
        restore_config(config_path, previous)  # the repository as it was: old config, no new version
        raise
    return Deployment(model_dir, version, config_path, previous, config_path.read_bytes(), before)


def rename_to_next_version(staging: Path, model_dir: Path, record: dict[str, Any]) -> int:
    """The next version number (`next_version`: never one issued before), taken by one atomic os.rename. The caller
    holds the model folder's lock; a number taken all the same (a deploy by a quantserve without the lock) makes us
    try the next one."""
    while True:
        version = next_version(model_dir)
        record_issued(model_dir, version)  # first: a deploy killed before its rename skips a number, never reuses one
        record["version"] = version
        write_json(staging / DEPLOY_RECORD, record)
        try:
            os.rename(staging, model_dir / str(version))
        except OSError:
            if (model_dir / str(version)).exists():
                continue
            raise
        fsync_path(model_dir)
        return version


def deploy_record(build_dir: Path, manifest: Manifest, config: dict[str, Any]) -> dict[str, Any]:
    """What was deployed from where and with which settings; written beside the version files."""
    return {
        "source": str(build_dir.resolve()),
        "model": manifest.name,
        "precision": manifest.precision,
        "target": manifest.target,
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
    }

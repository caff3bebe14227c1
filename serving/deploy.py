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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optimizer.cpu_isa import cpu_flags
from optimizer.graph_words import read_graph_words, words_record
from optimizer.onnx_files import model_sha256
from optimizer.speed import cpu_model
from optimizer.targets import get_target
from quantserve.artifact import (
    GRAPH_OUTPUTS,
    MANIFEST_NAME,
    Artifact,
    Manifest,
)
from quantserve.errors import QuantserveError
from serving.batch_axes import batch_dependence_warning, check_model_batch_axes, max_batch_for
from serving.batch_memory import batch_memory_line
from serving.build_checks import (
    check_build_model,
    check_cpu_session,
    check_onnx_file,
    int8_isa_warning,
    is_onnx,
    model_file_in,
)
from serving.build_parameters import SOURCE_PARAMETER
from serving.config_changes import interface_changes
from serving.config_check import interface_change
from serving.deploy_config import ServingPolicy, build_config, older_unbatched_config, pads_ragged
from serving.deploy_files import (
    copy_file,
    fsync_path,
    naming_the_repository,
    prepare_model_dir,
    prepare_repo_dir,
    write_json,
)
from serving.deploy_numbers import check_numbers
from serving.drift_parameter import with_version_builds
from serving.model_config import (
    CONFIG_NAME,
    check_model_name,
    merge_extra,
    parse_config,
    to_protobuf_text,
    write_config,
)
from serving.model_version import with_version_precisions
from serving.ragged_check import check_pad_exact
from serving.repository import STAGING_PREFIX, remove_stale_staging
from serving.repository_lock import FolderLockTimeout, model_folder_lock, remove_if_empty
from serving.scalar_tensors import check_scalars_servable, wrap_staged_model
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
    batch_warning: str = ""  # answers that move with their batch, served in larger batches than verified, or ""

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
    batch_warning = batch_dependence_warning(artifact.manifest, max_batch)  # warned, not refused
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
            deployment = replace(
                installed, memory_warning=memory_warning, isa_warning=isa_warning, batch_warning=batch_warning
            )
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

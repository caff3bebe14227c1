"""`quantserve tune`'s inputs checked before any server starts: that optuna imports, the settings, that each build
deploys, that two builds are two precisions of one model, that the winner would keep the interface of a model
already served under the name, that --out is a folder, that --repo and its model folder --name can be written (the
winner's deploy failed on a read-only --repo only after the whole search, writing no tune.json: session 58) and that
--port-range has a server's ports free. Each problem is one line naming it; nothing is searched."""

from __future__ import annotations

import math
import os
from pathlib import Path

from quantserve.cli.tune_trials import TuneSettings
from quantserve.errors import QuantserveError


def check_settings(settings: TuneSettings) -> None:
    """Every input checked before any server starts; each problem is one line naming it."""
    check_optuna()
    from optimizer.nan_inputs import NAN_INPUTS, build_nan_accepted
    from quantserve.data import check_against, load_npz
    from serving.deploy import load_artifact
    from serving.model_config import check_model_name
    from serving.ports import check_free_ports

    if not settings.builds:
        raise QuantserveError("tune needs at least one build folder")
    if not (settings.slo_p99_ms > 0 and math.isfinite(settings.slo_p99_ms)):
        raise QuantserveError(f"--slo-p99-ms must be a positive number of ms, got {settings.slo_p99_ms:g}")
    if settings.max_trials < 1:
        raise QuantserveError(f"--max-trials must be at least 1, got {settings.max_trials}")
    if settings.users < 1:
        raise QuantserveError(f"--users must be at least 1, got {settings.users}")
    if settings.trace is not None:
        settings.load_step().check()  # a missing or malformed trace is one line, before any server starts
    if settings.request_batch < 1:
        raise QuantserveError(f"--request-batch must be at least 1, got {settings.request_batch}")
    check_model_name(settings.name)
    check_out_folder(Path(settings.out))
    check_repo_folder(Path(settings.repo), settings.name)
    data = load_npz(settings.data, float_truth=True)  # a regressor's float truth: never scored here
    for build in settings.builds.values():
        manifest = load_artifact(Path(build)).manifest
        if manifest.unbatched:  # its only config is max_batch_size 0: the search's batch sizes do not apply to it
            raise QuantserveError(
                f"{build}: built with --unbatched, it is served one request at a time (max_batch_size 0), so tune "
                "has no batch size or queue delay to search; deploy it with 'quantserve deploy' (--instances N runs "
                "N requests at once)"
            )
        # NaN only in the inputs whose NaN the build accepted (`optimizer.nan_inputs`): a tree ensemble's "missing"
        check_against(settings.data, data, manifest.inputs, build_nan_accepted(manifest.extra.get(NAN_INPUTS), build))
        check_deployable(Path(build))
    check_one_model([Path(build) for build in settings.builds.values()])
    for build in settings.builds.values():
        check_interface_kept(Path(build), settings)
    # one server at a time (the trials', then the re-measure's), each on 3 ports at once: a range with fewer free
    # deployed the winner after a 50 s search, then could not start the re-measure's server
    check_free_ports(3)


def check_optuna(alternative: str = "") -> None:
    """The search's sampler imports, or one line naming the package and how to install it, `alternative` after it:
    without it `tune` failed at its first trial with a 20-line traceback, its server already started (session 62)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise QuantserveError(
            "tune needs the 'optuna' package, which is not installed here: pip install optuna (its pin is in "
            f"requirements.lock and requirements-serving.txt){alternative}"
        ) from None


def check_out_folder(out: Path) -> None:
    """--out must be a folder (or not exist yet): a file there failed only at the first trial, naming tune's own
    scratch path inside it (`…/.tune-repo: not a directory`)."""
    found = next(path for path in [out, *out.absolute().parents] if path.exists())  # the root exists
    if not found.is_dir():
        where = "" if found == out else f"{found} "
        raise QuantserveError(f"--out {out}: {where}is a file, not a folder")


def check_repo_folder(repo: Path, name: str) -> None:
    """--repo, and its folder for --name, must be folders the winner can be deployed into (or be creatable there):
    on a read-only --repo the deploy failed after every trial and the confirmation (71-86 s), and tune.json and
    tune.html were never written (session 58)."""
    found = next(path for path in [repo, *repo.absolute().parents] if path.exists())  # the root exists
    _check_writable(f"--repo {repo}", found, "" if found == repo else f"{found} ")
    if (repo / name).exists():
        _check_writable(f"--name {name}", repo / name, f"{repo / name} ")


def _check_writable(flag: str, folder: Path, where: str) -> None:
    from serving.deploy_files import unwritable_reason

    if not folder.is_dir():
        raise QuantserveError(f"{flag}: {where}is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        why = unwritable_reason(folder)
        raise QuantserveError(f"{flag}: {where}{why}, so the winner could not be deployed there (nothing was searched)")


def check_interface_kept(build: Path, settings: TuneSettings) -> None:
    """Refuse, before the search, a build whose inputs or outputs differ from those of the model already at
    `repo/name`: the winner's deploy would be refused only after the whole search (49 s at --max-trials 1), and
    nothing of the search was written."""
    from optimizer.targets import get_target
    from serving.config_changes import interface_changes
    from serving.deploy import load_artifact
    from serving.deploy_config import build_config
    from serving.model_config import CONFIG_NAME, merge_extra, parse_config

    config_path = Path(settings.repo) / settings.name / CONFIG_NAME
    if not config_path.is_file():
        return
    artifact = load_artifact(build)
    layout = get_target(artifact.manifest.target).triton_layout(artifact)
    config = build_config(artifact.manifest, layout, settings.name, 0, 0, None, 1)  # clients' shapes: batched alike
    changes = interface_changes(parse_config(config_path), merge_extra(config.to_dict(), layout.config_extra))
    if changes:
        more = f" (and {len(changes) - 2} more)" if len(changes) > 2 else ""
        raise QuantserveError(
            f"{config_path.parent}: {build} changes the model's interface: {'; '.join(changes[:2])}{more}; requests "
            "made for the model there now would fail. Tune it under another --name (nothing was searched)"
        )


def check_deployable(build: Path) -> None:
    """Refuse a build the trials could not deploy: a file its target's layout needs is missing (each trial's
    deploy would fail, and the search would end as "SLO missed"), a damaged ONNX file, or a target that serves
    on GPU instances where there is no NVIDIA GPU, or one whose backend the tritonserver found here lacks (an
    `--target onnxruntime` build under the nvidia-pytriton wheel: session 45, every trial failed to load it). The
    checks are deploy's own, run once up front."""
    from optimizer.targets import get_target
    from serving.deploy import check_onnx_file, load_artifact
    from serving.machine import gpus
    from serving.triton_install import check_backend

    artifact = load_artifact(build)
    layout = get_target(artifact.manifest.target).triton_layout(artifact)
    missing = [str(p) for p in layout.version_files.values() if not Path(p).is_file()]
    if missing:
        raise QuantserveError(f"{build}: files the deploy needs are missing: {', '.join(missing)}")
    check_onnx_file(artifact.path)
    kind = layout.instance_kind
    found = gpus() if kind == "KIND_GPU" else []
    if isinstance(found, str):
        raise QuantserveError(f"{build}: its target serves on {kind} instances, but this machine has {found}")
    check_backend(layout.runtime, f"{build} (target {artifact.manifest.target})")


def check_one_model(builds: list[Path]) -> None:
    """Two builds must be two precisions of one model (the winner of either is deployed under one name): some
    file of each — its model file or its FP32 reference (`files.reference`, fp32.onnx) — has the other's bytes."""
    if len(builds) < 2:
        return
    first, second = (model_digests(build) for build in builds)
    if not first & second:
        raise QuantserveError(
            f"{builds[0]} and {builds[1]} are builds of different models: neither's model file nor reference "
            "(files.reference) has the other's bytes; tune compares FP32 and INT8 builds of one model"
        )


def model_digests(build: Path) -> set[str]:
    """sha256 of the build's model and of its FP32 reference where it has one, each with its weights file."""
    from optimizer.onnx_files import model_sha256
    from serving.deploy import load_artifact

    artifact = load_artifact(build)
    reference = artifact.manifest.files.get("reference")
    paths = {artifact.path, *([build / reference] if reference else [])}
    return {model_sha256(path) for path in paths if path.is_file()}

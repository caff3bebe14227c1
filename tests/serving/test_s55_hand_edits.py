"""Hand edits of a served model folder under a running serve (session 55).

max_batch_size edited 64 → 8 was reloaded ("versions [1] live") and requests of 9 to 64 rows failed from then on,
where deploy refuses the same change: the watcher now refuses it in deploy's words and the served version keeps
serving. A config.pbtxt removed alone unloaded the model ("removed from the repository") while its folder and
versions were there: they keep serving now. A repository readable again is said, and a manifest that cannot be
read is named: it turned off the check that a served model file is the one deployed, in silence.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_edited_config import FakeControl, edit_config
from test_supervisor import Serve, serve_command

from quantserve.artifact import MANIFEST_NAME, MODEL_SHA256, Manifest, file_sha256
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.config_check import edited_interface_change
from serving.control import ControlClient
from serving.deploy import deploy
from serving.endpoints import ServedEndpoints, recorded
from serving.model_config import parse_config
from serving.repository_lock import model_folder_lock
from serving.restarts import restart_interface_changes
from serving.served_files import replaced_model_files, served_file_notes
from serving.server import ServerOptions
from serving.supervisor import Supervisor
from serving.versions import rollback

CUT = (
    "has a config.pbtxt edited by hand that changes the model's interface: max_batch_size 64 → 8 (requests of 9 to "
    "64 rows would be refused); requests made for the version there now would fail; put back the config it served, "
    "or deploy the build with --allow-interface-change to serve it so"
)
CUT_64_TO_8 = [("max_batch_size: 64", "max_batch_size: 8")] + [
    (f"preferred_batch_size: {size}\n", "") for size in (16, 32, 64)
]


def edit_all(model_dir: Path, edits: list[tuple[str, str]]) -> None:
    for old, new in edits:
        edit_config(model_dir, old, new)


def test_a_hand_edit_lowering_max_batch_size_is_refused_in_deploys_words(dense_build: Path, tmp_path: Path) -> None:
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=64).model_dir
    served = parse_config(model_dir / "config.pbtxt")
    edit_all(model_dir, CUT_64_TO_8)
    assert edited_interface_change(model_dir, served) == CUT
    assert edited_interface_change(model_dir, None) is None, "nothing served: no client to break"
    with pytest.raises(QuantserveError) as refused:
        deploy(dense_build, tmp_path / "repo", "m", max_batch=4)  # deploy's own words, from the same function
    assert str(refused.value) == (
        f"{model_dir}: this version changes the model's interface: max_batch_size 8 → 4 (requests of 5 to 8 rows "
        "would be refused); requests made for the version there now would fail. Deploy it under another --name, or "
        "pass --allow-interface-change"
    )
    edit_all(model_dir, [(new, old) for old, new in CUT_64_TO_8[:1]])
    assert edited_interface_change(model_dir, served) is None, "raising it back breaks no request"


def test_a_cut_that_deploy_or_rollback_wrote_is_loaded(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    model_dir = deploy(dense_build, repo, "m", max_batch=8).model_dir
    deploy(dense_build, repo, "m", max_batch=64)
    served = parse_config(model_dir / "config.pbtxt")
    assert rollback(repo, "m", to=1) == 1  # back to version 1's max_batch_size 8
    assert edited_interface_change(model_dir, served) is None
    deploy(dense_build, repo, "m", max_batch=4, allow_batch_cut=True)  # tune's winner: it says so itself
    assert edited_interface_change(model_dir, served) is None


def test_a_deploys_config_is_judged_once_its_version_is_in(dense_build: Path, tmp_path: Path) -> None:
    """A deploy writes its config, then renames its version in, under the model folder's lock: a watcher that looked
    in between took a cut it was allowed to make (tune's winner) for a hand edit."""
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=64).model_dir
    served = parse_config(model_dir / "config.pbtxt")
    other = deploy(dense_build, tmp_path / "other", "m", max_batch=8).model_dir  # what that deploy writes
    judged: list[str | None] = []
    with model_folder_lock(model_dir):
        shutil.copy(other / "config.pbtxt", model_dir / "config.pbtxt")
        watcher = threading.Thread(target=lambda: judged.append(edited_interface_change(model_dir, served)))
        watcher.start()
        watcher.join(timeout=1.0)
        assert watcher.is_alive(), f"judged while the deploy held the lock: {judged}"
        shutil.copytree(other / "1", model_dir / "2")
    watcher.join()
    assert judged == [None]


def supervisor_of(repo: Path, lines: list[str], control: ControlClient) -> Supervisor:
    """A supervisor of `repo` whose server is `control` (never started): its watcher alone is tested."""
    supervisor = Supervisor(ServerOptions.on_free_ports(repo, model_control="explicit"), log=lines.append)
    supervisor._long_control = lambda: control  # type: ignore[method-assign]
    return supervisor


def test_the_watcher_keeps_serving_the_version_loaded_before_a_hand_cut(dense_build: Path, tmp_path: Path) -> None:
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=64).model_dir
    lines: list[str] = []
    control = FakeControl([])
    supervisor = supervisor_of(tmp_path / "repo", lines, control)
    assert supervisor.reload_changed() == ["m"] and lines == ["model 'm' loaded: versions [1] live"]
    edit_all(model_dir, CUT_64_TO_8)
    assert supervisor.reload_changed() == ["m"]
    assert lines[1:] == [f"model 'm' not reloaded, versions [1] keep serving: {model_dir} {CUT}"]
    assert control.loads == 1


class UnloadingControl(FakeControl):
    def __init__(self, versions: list[int]) -> None:
        super().__init__(versions)
        self.unloaded: list[str] = []

    def unload(self, model: str) -> None:
        self.unloaded.append(model)


def test_a_config_removed_alone_keeps_its_versions_serving(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    model_dir = deploy(dense_build, repo, "m", max_batch=8).model_dir
    lines: list[str] = []
    control = UnloadingControl([])
    supervisor = supervisor_of(repo, lines, control)
    supervisor.reload_changed()
    (model_dir / "config.pbtxt").rename(tmp_path / "config.pbtxt")
    supervisor.reload_changed()
    supervisor.reload_changed()  # said once
    assert lines[1:] == [
        f"model 'm' has no config.pbtxt now: versions [1] keep serving; put it back, or remove {model_dir} to take "
        "the model out of service"
    ]
    assert control.unloaded == []
    (tmp_path / "config.pbtxt").rename(model_dir / "config.pbtxt")  # back as it was: nothing to load again
    assert supervisor.reload_changed() == [] and len(lines) == 2 and control.loads == 1
    shutil.rmtree(model_dir)
    supervisor.reload_changed()
    assert lines[2:] == ["model 'm' removed from the repository: unloaded"] and control.unloaded == ["m"]


def test_a_repository_readable_again_is_said(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "m", max_batch=8)
    lines: list[str] = []
    supervisor = supervisor_of(repo, lines, UnloadingControl([]))
    supervisor.reload_changed()
    repo.rename(tmp_path / "away")
    supervisor.reload_changed()
    (tmp_path / "away").rename(repo)
    supervisor.reload_changed()
    assert lines[1:] == [
        f"repository {repo} unreadable (No such file or directory); loaded models keep serving",
        f"repository {repo} readable again; changes made to it meanwhile are loaded now",
    ]


def test_an_unreadable_manifest_is_named_and_a_missing_one_is_not(dense_build: Path, tmp_path: Path) -> None:
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=8).model_dir
    manifest = model_dir / "1" / MANIFEST_NAME
    manifest.write_text(manifest.read_text()[:40])
    [line] = replaced_model_files(model_dir)
    assert line.startswith("warning: model 'm' version 1: 1/manifest.json is unreadable (")
    assert line.endswith(
        "), so its model file is unchecked against the sha256 deployed; it serves what is on disk now: deploy the "
        "build again to serve what was verified"
    )
    manifest.write_text("[]")
    assert "1/manifest.json is unreadable (not a JSON object)" in replaced_model_files(model_dir)[0]
    manifest.unlink()
    assert replaced_model_files(model_dir) == []


@pytest.mark.e2e
def test_serve_refuses_a_hand_cut_names_it_at_a_restart_and_keeps_a_model_whose_config_was_removed(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    serve = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log")))
    model_dir = tmp_path / "repo" / "dense"
    data = tmp_path / "x8.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32))
    infer = ["infer", "--url", f"127.0.0.1:{ports[0]}", "--model", "dense", "--data", str(data)]
    try:
        serve.wait_for("press Ctrl-C", timeout_s=120)
        edit_all(model_dir, [("max_batch_size: 8", "max_batch_size: 4"), ("preferred_batch_size: 8\n", "")])
        line = serve.wait_for("model 'dense' ", timeout_s=30).rstrip("\n")
        assert line.startswith(f"model 'dense' not reloaded, versions [1] keep serving: {model_dir} has a config")
        assert "max_batch_size 8 → 4 (requests of 5 to 8 rows would be refused)" in line
        assert main([*infer, "--batch-size", "8"]) == 0
        serve.tritonserver().kill()  # a restart loads what is on disk: said
        line = serve.wait_for("model 'dense'", timeout_s=120).rstrip("\n")
        assert line.startswith("warning: model 'dense': the restart loaded its config.pbtxt as it is on disk, which ")
        (model_dir / "config.pbtxt").unlink()
        line = serve.wait_for("model 'dense' ", timeout_s=30).rstrip("\n")
        assert line.startswith("model 'dense' has no config.pbtxt now: versions [1] keep serving")
        assert main([*infer, "--batch-size", "4"]) == 0
    finally:
        serve.stop()


def test_served_file_notes_read_the_repository_from_serves_record(dense_build: Path, tmp_path: Path) -> None:
    manifest = Manifest.load(dense_build)
    manifest.extra[MODEL_SHA256] = file_sha256(dense_build / "model.onnx")
    manifest.save(dense_build)
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=8).model_dir
    record = ServedEndpoints(os.getpid(), str(tmp_path / "repo"), "127.0.0.1", 19650, 19651, 19652)
    assert served_file_notes("127.0.0.1:19650", "m", "1") == [], "no serve recorded there: nothing to read"
    with recorded(record):
        assert served_file_notes("127.0.0.1:19650", "m@1", "1") == []
        (model_dir / "1" / "model.onnx").write_bytes(b"another file")
        assert served_file_notes("127.0.0.1:19650", "m@1", "1") == [
            "version 1: model.onnx is not the file deployed (its sha256 differs from 1/manifest.json's); it serves "
            "what is on disk now: deploy the build again to serve what was verified"
        ]


def test_a_restart_that_loads_a_refused_cut_says_so(dense_build: Path, tmp_path: Path) -> None:
    model_dir = deploy(dense_build, tmp_path / "repo", "m", max_batch=64).model_dir
    before = {"m": parse_config(model_dir / "config.pbtxt")}
    edit_all(model_dir, CUT_64_TO_8)
    after = {"m": parse_config(model_dir / "config.pbtxt")}
    assert restart_interface_changes(before, after) == [
        "warning: model 'm': the restart loaded its config.pbtxt as it is on disk, which changes the model's "
        "interface: max_batch_size 64 → 8 (requests of 9 to 64 rows would be refused); requests made for the version "
        "there now would fail"
    ]
    assert restart_interface_changes(after, before) == [] and restart_interface_changes(before, {}) == []

"""`quantserve profile BUILD`: profile.json/.md/.html from a tiny build made by the real optimize pipeline."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from optimizer.profile import ModelProfile, NodeTime
from optimizer.profile_compare import BuildProfile, NodeRow, OpTypeRow
from quantserve.cli import main
from quantserve.cli.commands.profile import print_tables
from tests.optimizer.engine_test_models import embedding_model

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An INT8 build of the tiny CNN (fp32.onnx, model.onnx, manifest.json) written by `optimize`."""
    sys.path.insert(0, str(ASSETS))
    import make_tiny_models

    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings

    root = tmp_path_factory.mktemp("profile-command")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTSERVE_CACHE_DIR", str(root / "calib-cache"))
        source = make_tiny_models.write_tiny_onnx(root / "tiny.onnx")
        calib = make_tiny_models.write_digits_like_npz(root / "calib.npz", samples=400)
        untimed = SpeedSettings(enabled=False)  # a slower tiny INT8 is still a build to profile
        optimize(OptimizeOptions(source, calib, "int8", "embedded", root / "build", speed=untimed))
    sys.path.remove(str(ASSETS))
    yield root / "build"


def _profile(build: Path, out: Path, *extra: str) -> int:
    return main(["profile", str(build), "--out", str(out), "--repeats", "1", "--batch", "4", *extra])


def test_profile_writes_json_markdown_and_self_contained_html(tiny_build: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert _profile(tiny_build, out, "--top", "3") == 0
    printed = capsys.readouterr().out
    assert "time per op type" in printed and "top 3 nodes" in printed
    data = json.loads((out / "profile.json").read_text())
    assert {"cpu", "inputs", "reference", "model", "op_types", "nodes", "run_speedup"} <= set(data)
    assert data["precision"] == "int8" and data["inputs"].startswith("verification data ")
    assert data["reference"]["run_ms"] > 0 and data["model"]["run_ms"] > 0
    rows = {row["op_type"]: row for row in data["op_types"]}
    for op in ("Conv", "Gemm"):
        assert rows[op]["reference_ms"] > 0 and rows[op]["model_ms"] > 0
    html = (out / "profile.html").read_text()
    for external in ("http://", "https://", "<script", "<link", " src="):
        assert external not in html
    assert "<svg" in html and "Kernel time per run by op type" in html
    assert "| FP32 ms | INT8 ms | speedup | FP32 % | INT8 % | op type |" in (out / "profile.md").read_text()


def test_every_node_of_both_models_is_in_the_json(tiny_build: Path, tmp_path: Path) -> None:
    assert _profile(tiny_build, tmp_path / "out") == 0
    result = BuildProfile.load(tmp_path / "out" / "profile.json")
    rows = {row.node for row in result.nodes if not row.inserted}
    for profile, model in ((result.reference, "fp32.onnx"), (result.model, "model.onnx")):
        names = {node.name for node in onnx.load(str(tiny_build / model)).graph.node}
        timed = {n.onnx_node for n in profile.nodes if n.onnx_node}
        assert timed | set(profile.not_run) == names
        assert timed <= rows


def test_json_flag_prints_the_json(tiny_build: Path, tmp_path: Path, capsys) -> None:
    assert _profile(tiny_build, tmp_path / "out", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "out" / "profile.json").read_text())


def test_random_inputs_when_the_verification_data_is_gone(tiny_build: Path, tmp_path: Path) -> None:
    build = shutil.copytree(tiny_build, tmp_path / "build")
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["verification"]["data"] = str(tmp_path / "gone.npz (last 8 of 40 samples held out)")
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert _profile(build, tmp_path / "out") == 0
    profile = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert profile["inputs"] == "random inputs from the manifest's input specs (4 batches of 4)"
    gone = f"the verification data the manifest names ({tmp_path / 'gone.npz'}) is not found from "
    assert any(note.startswith(gone) and note.endswith("pass --data") for note in profile["notes"]), profile["notes"]


def test_verification_data_given_relative_is_recorded_absolute(tmp_path: Path, monkeypatch) -> None:
    """A relative path recorded by optimize sent profile run from another folder to random inputs in silence."""
    import numpy as np

    from optimizer.pipeline import split_holdout
    from quantserve.data import TensorData

    monkeypatch.chdir(tmp_path)
    data = TensorData({"x": np.zeros((40, 3), np.float32)})
    assert split_holdout(data, data, Path("calib.npz"), "heldout.npz")[2] == str(tmp_path / "heldout.npz")
    source = split_holdout(data, None, Path("calib.npz"), None)[2]
    assert source == f"{tmp_path / 'calib.npz'} (last 8 of 40 samples held out)"


def test_verification_data_is_found_from_any_folder(tiny_build: Path, tmp_path: Path, monkeypatch) -> None:
    recorded = json.loads((tiny_build / "manifest.json").read_text())["verification"]["data"].split(" (")[0]
    monkeypatch.chdir(tmp_path)
    assert _profile(tiny_build, tmp_path / "out") == 0
    profile = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert profile["inputs"].startswith(f"verification data {recorded}"), profile["inputs"]


def test_data_file_inputs_are_checked(tiny_build: Path, tmp_path: Path, capsys) -> None:
    import numpy as np

    np.savez(tmp_path / "wrong.npz", other=np.zeros((4, 3), np.float32))
    assert _profile(tiny_build, tmp_path / "out", "--data", str(tmp_path / "wrong.npz")) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_not_a_build_folder_is_one_line(tmp_path: Path, capsys) -> None:
    assert _profile(tmp_path, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"quantserve: error: {tmp_path}: no manifest.json; is this the output of 'quantserve optimize'?"
    assert not (tmp_path / "out").exists()


def test_missing_model_is_one_line(tiny_build: Path, tmp_path: Path, capsys) -> None:
    build = shutil.copytree(tiny_build, tmp_path / "build")
    (build / "model.onnx").unlink()
    assert _profile(build, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip() == (
        f"quantserve: error: {build}: model.onnx is missing; rerun 'quantserve optimize'"
    )


def test_a_tensorrt_plan_is_refused(tiny_build: Path, tmp_path: Path, capsys) -> None:
    build = shutil.copytree(tiny_build, tmp_path / "build")
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["files"]["model"], manifest["target"] = "model.plan", "tensorrt"
    (build / "manifest.json").write_text(json.dumps(manifest))
    (build / "model.plan").write_bytes(b"engine")
    assert _profile(build, tmp_path / "out") == 2
    assert "profile runs ONNX models in ONNX Runtime" in capsys.readouterr().err


def test_bad_option_values_exit_2(tiny_build: Path, tmp_path: Path, capsys) -> None:
    assert _profile(tiny_build, tmp_path / "out", "--top", "0") == 2
    assert "--top must be at least 1, got 0" in capsys.readouterr().err


LONG = "/encoder/layer.11/attention/self/query/MatMul_quantized_with_a_very_long_name_indeed"


def _synthetic() -> BuildProfile:
    nodes = [NodeTime("a", "QLinearMatMul", LONG, "MatMul", 2.0)]
    profile = ModelProfile("m.onnx", 1, 3, 3.0, nodes)
    return BuildProfile(
        "build/x", "int8", "Some CPU", "random", 8, 1, 3, profile, profile,
        [OpTypeRow("MatMulWithAnUnusuallyLongOpTypeName", 2.0, 1.0, 2.0, 1.0, 1.0)],
        [NodeRow(LONG, "MatMul", 4.0, 2.0, 2.0, False)], 1.0,
    )  # fmt: skip


def test_terminal_tables_fit_80_columns_and_never_cut_a_name(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    print_tables(_synthetic(), top=5)
    lines = capsys.readouterr().out.splitlines()
    table_lines = [line for line in lines if line.startswith("│")]
    assert all(len(line) <= 80 for line in table_lines)
    assert "…" not in "".join(lines)
    last_cells = "".join(line.rstrip(" │").rsplit("│", 1)[-1].strip() for line in table_lines)
    assert f"{LONG}(MatMul)" in last_cells  # folded over lines; the space at a fold is dropped
    assert "MatMulWithAnUnusuallyLongOpTypeName" in last_cells


def test_a_busy_machine_is_said_and_recorded(tiny_build: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import optimizer.profile

    real = optimizer.profile.profile_model

    def profiled_while_busy(*args: object, **kwargs: object) -> ModelProfile:
        profile = real(*args, **kwargs)
        profile.others_share = 0.52  # as other processes at load 6 took 52% of 2 cores
        return profile

    monkeypatch.setattr(optimizer.profile, "profile_model", profiled_while_busy)
    assert _profile(tiny_build, tmp_path / "out", "--rounds", "1") == 0
    note = (
        "profiled on a busy machine (other processes used 52% of the cores): the ms and speedups are not to be "
        "trusted; profile again when idle"
    )
    printed = capsys.readouterr().out
    assert note in printed and "timed: 1 round(s) (FP32, model, FP32, model, …)" in printed
    data = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert (data["busy"], data["others_share"], data["notes"]) == (True, 0.52, [note])


def test_an_idle_profile_records_the_share_and_no_note(tiny_build: Path, tmp_path: Path, monkeypatch) -> None:
    import optimizer.profile

    real = optimizer.profile.profile_model

    def profiled_while_idle(*args: object, **kwargs: object) -> ModelProfile:
        return replace(real(*args, **kwargs), others_share=0.03)

    monkeypatch.setattr(optimizer.profile, "profile_model", profiled_while_idle)
    assert _profile(tiny_build, tmp_path / "out", "--rounds", "2") == 0
    data = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert (data["busy"], data["others_share"], data["notes"]) == (False, 0.03, [])
    assert data["reference"]["rounds"] == data["model"]["rounds"] == 2


def test_an_fp32_build_is_profiled_once_and_shows_no_ratio(
    tiny_build: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import optimizer.profile

    build = shutil.copytree(tiny_build, tmp_path / "build")
    shutil.copyfile(build / "fp32.onnx", build / "model.onnx")
    profiled: list[str] = []
    real = optimizer.profile.profile_model

    def spy(path: Path, *args: object) -> ModelProfile:
        profiled.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(optimizer.profile, "profile_model", spy)
    assert _profile(build, tmp_path / "out", "--rounds", "2") == 0
    assert profiled == ["fp32.onnx", "fp32.onnx"]
    assert "model.onnx is the FP32 model itself (an FP32 build): nothing to compare" in capsys.readouterr().out
    data = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert data["run_speedup"] is None
    assert all(row["speedup"] is None for row in data["op_types"] + data["nodes"])


def test_ids_past_the_embedding_in_the_data_file_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    import numpy as np

    from quantserve.artifact import Manifest, TensorSpec

    build = tmp_path / "seq_int8"
    build.mkdir()
    embedding_model(build / "fp32.onnx", "embed")
    embedding_model(build / "model.onnx", "embed_int8")  # another file, so both are profiled
    ids, rows = TensorSpec("ids", "int64", ("batch", 3)), TensorSpec("rows", "float32", ("batch", 3, 4))
    Manifest("seq", [ids], [rows], precision="int8").save(build)
    np.savez(tmp_path / "seqbig.npz", ids=np.full((4, 3), 500, np.int64))
    assert _profile(build, tmp_path / "out", "--data", str(tmp_path / "seqbig.npz")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"quantserve: error: fp32.onnx cannot run on data file {tmp_path / 'seqbig.npz'} (1 batches of up to 4): "
        "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT"
    )
    assert "Name:'/embed/Gather'" in err and "idx=500" in err and len(err.splitlines()) == 1


def test_an_out_under_a_file_is_refused_before_any_timing(tmp_path: Path, capsys, monkeypatch) -> None:
    import quantserve.cli.commands.profile as command

    monkeypatch.setattr(command, "profile_build", lambda *args: pytest.fail("timed before --out was checked"))
    (tmp_path / "a_file").write_text("")
    assert main(["profile", str(tmp_path), "--out", str(tmp_path / "a_file" / "profile")]) == 2
    assert capsys.readouterr().err.strip().endswith("is a file, not a folder")


def test_a_model_file_given_as_the_build_is_one_line(tmp_path: Path, capsys) -> None:
    """`profile model.onnx` said "--out model.onnx/profile: … is a file, not a folder", an option never given."""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    assert main(["profile", str(model)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"quantserve: error: {model}: is a file, not a folder; profile reads a build folder, written by "
        "'quantserve optimize MODEL --out FOLDER'"
    )
    assert main(["profile", str(tmp_path / "gone")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"quantserve: error: {tmp_path / 'gone'}: not found; ")

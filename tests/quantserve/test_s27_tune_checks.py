"""`quantserve tune` refuses, before its search, an --out that is a file and a --port-range without a server's
three ports free.

Before: --out naming a file failed at the first trial naming tune's own scratch path (`…/.tune-repo: not a
directory`); a range of 3 free ports ran the whole search (~50 s), deployed the winner, then failed with "the three
ports must differ: --grpc-port 26216, --http-port 26216, …" (no tune.json), and one of 2 free ports failed at once
with that line, of flags the user never gave."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_tune import loadtest_models

from quantserve.cli import main


@pytest.fixture
def build(tmp_path: Path) -> Path:
    models = loadtest_models()
    models.labeled_data(64, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    return Path(models.make_build_dir(tmp_path / "build" / "mlp_fp32"))


def tune_argv(build: Path, tmp_path: Path, *more: str) -> list[str]:
    data, repo = str(tmp_path / "load.npz"), str(tmp_path / "repo")
    return ["tune", str(build), "--data", data, "--slo-p99-ms", "50", "--name", "m", "--repo", repo, *more]


def test_an_out_that_is_a_file_is_one_line_before_any_work(
    tmp_path: Path, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tfile"
    out.write_text("mine\n")
    assert main(tune_argv(build, tmp_path, "--out", str(out))) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: --out {out}: is a file, not a folder"
    assert out.read_text() == "mine\n" and not (tmp_path / "repo").exists()
    inside = out / "sub"
    assert main(tune_argv(build, tmp_path, "--out", str(inside))) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: --out {inside}: {out} is a file, not a folder"


@pytest.mark.parametrize("given_by", ["flag", "variable"])
def test_a_port_range_without_three_free_ports_is_refused_before_the_search(
    tmp_path: Path, build: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, given_by: str
) -> None:
    """Named as the user gave it: the flag, or the variable they set (which is also the flag's default)."""
    out, more = tmp_path / "out", ["--port-range", "21330-21332"]
    if given_by == "variable":
        monkeypatch.setenv("QUANTSERVE_PORT_RANGE", more.pop())
        more.pop()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 21331))
        taken.listen()
        code = main(tune_argv(build, tmp_path, "--out", str(out), *more))
    assert code == 2
    source = "--port-range 21330-21332" if given_by == "flag" else "QUANTSERVE_PORT_RANGE=21330-21332"
    assert capsys.readouterr().err.strip() == (
        f"quantserve: error: no 3 free ports on 127.0.0.1 in {source} (3 ports, 2 of them free): "
        "widen the range (a server takes 3 at once, a load test's Locust master 1)"
    )
    assert not out.exists() and not (tmp_path / "repo").exists()  # nothing searched, nothing deployed

"""A serve's TLS certificate near or past its end is said at start and while serving (session 45): started 4 min
before its certificate expired, serve said nothing, served it past expiry in silence (every TLS client refused it),
and after a crash restarted tritonserver on it: "ready again"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import trustme

from serving.supervisor import Supervisor
from serving.tls import ServerTls


def _server_tls(folder: Path, lifetime: dt.timedelta) -> tuple[ServerTls, dt.datetime]:
    begins = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)  # a certificate keeps seconds
    leaf = trustme.CA().issue_cert("127.0.0.1", not_before=begins, not_after=begins + lifetime)
    cert, key = folder / "server.pem", folder / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ServerTls(cert, key), begins + lifetime


def test_a_certificate_near_its_end_is_warned_of_and_one_past_it_named_expired(tmp_path: Path) -> None:
    tls, ends = _server_tls(tmp_path, dt.timedelta(hours=3))
    state, line = tls.expiry_note(ends - dt.timedelta(minutes=4)) or ("", "")
    assert state == "expires" and "(in 4 min): then every TLS client refuses it" in line, line
    state, line = tls.expiry_note(ends - dt.timedelta(days=2, hours=1)) or ("", "")
    assert state == "expires" and "(in 2 d)" in line, line
    state, line = tls.expiry_note(ends + dt.timedelta(seconds=1)) or ("", "")
    assert state == "expired" and f"--tls-cert {tls.cert} expired on {ends:%Y-%m-%d %H:%M} UTC" in line, line
    assert tls.expiry_note(ends - dt.timedelta(days=8)) is None


def test_a_certificate_far_from_its_end_says_nothing_and_a_vanished_one_is_named(tmp_path: Path) -> None:
    tls, _ = _server_tls(tmp_path, dt.timedelta(days=365))
    assert tls.expiry_note() is None
    tls.cert.unlink()
    state, line = tls.expiry_note() or ("", "")
    assert state == "unreadable" and "a restart cannot serve TLS from it" in line, line


def test_the_supervisor_says_each_change_once(tmp_path: Path) -> None:
    tls, ends = _server_tls(tmp_path, dt.timedelta(hours=3))
    clock = iter([ends - dt.timedelta(minutes=9), ends - dt.timedelta(minutes=8), ends, ends + dt.timedelta(hours=1)])
    said: list[str] = []
    watched = SimpleNamespace(tls=SimpleNamespace(expiry_note=lambda: tls.expiry_note(next(clock))))
    supervisor = SimpleNamespace(options=watched, log=said.append, _tls_said=None, _tls_checked=0.0)
    for _ in range(4):
        Supervisor._check_certificate(supervisor)  # type: ignore[arg-type]
    assert len(said) == 2 and "(in 9 min)" in said[0] and " expired on " in said[1], said

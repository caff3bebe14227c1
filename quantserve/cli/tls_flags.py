"""The client TLS flags shared by `infer`, `evaluate` and `loadtest`: `--tls-ca`, `--tls-cert`, `--tls-key`."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def add_tls_flags(parser: Any) -> None:
    """`--tls-ca` (trust a server's certificate) and, for mutual TLS, `--tls-cert` and `--tls-key`."""
    group = parser.add_argument_group("TLS (gRPC)")
    group.add_argument("--tls-ca", type=Path, help="PEM CA that signed the server's certificate: connect over TLS")
    group.add_argument("--tls-cert", type=Path, help="mutual TLS: this client's PEM certificate")
    group.add_argument("--tls-key", type=Path, help="mutual TLS: this client's PEM private key")


def client_tls(args: argparse.Namespace) -> Any:
    """The flags as `serving.tls.ClientTls`, or None (then QUANTSERVE_TLS_* apply, else plain gRPC)."""
    from serving.tls import ClientTls

    return ClientTls.from_args(args.tls_ca, args.tls_cert, args.tls_key)


@contextlib.contextmanager
def tls_environment(tls: Any) -> Iterator[None]:
    """QUANTSERVE_TLS_* set from `tls` for code that builds its own gRPC clients, restored afterwards."""
    saved = dict(os.environ)
    if tls is not None:
        os.environ.update(tls.env())
    try:
        yield
    finally:
        for name in ("QUANTSERVE_TLS_CA", "QUANTSERVE_TLS_CERT", "QUANTSERVE_TLS_KEY"):
            if name in saved:
                os.environ[name] = saved[name]
            else:
                os.environ.pop(name, None)

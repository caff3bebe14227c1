"""TLS settings for the server's gRPC endpoint and for the clients that call it.

Triton 2.51 serves TLS on gRPC only (`--grpc-use-ssl`, `--grpc-server-cert`, `--grpc-server-key`,
and with a client CA `--grpc-use-ssl-mutual` + `--grpc-root-cert`); its HTTP endpoint has no TLS,
so with TLS on quantserve keeps HTTP and metrics on loopback.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError

ENV_CA, ENV_CERT, ENV_KEY = "QUANTSERVE_TLS_CA", "QUANTSERVE_TLS_CERT", "QUANTSERVE_TLS_KEY"


def _readable(path: Path | None, flag: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise QuantserveError(f"{flag} {path}: file not found")
    return path.resolve()


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key (PEM); with `client_ca`, clients must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert", _readable(self.cert, "--tls-cert"))
        object.__setattr__(self, "key", _readable(self.key, "--tls-key"))
        object.__setattr__(self, "client_ca", _readable(self.client_ca, "--tls-client-ca"))

    def flags(self) -> list[str]:
        """tritonserver's gRPC TLS flags (checked against the 2.51 binary's --help)."""
        args = ["--grpc-use-ssl=true", f"--grpc-server-cert={self.cert}", f"--grpc-server-key={self.key}"]
        if self.client_ca is not None:
            args += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.client_ca}"]
        return args


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts (`ca`) and, for mutual TLS, the certificate and key it presents."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise QuantserveError("--tls-cert and --tls-key go together (a client certificate needs its key)")
        for name, flag in (("ca", "--tls-ca"), ("cert", "--tls-cert"), ("key", "--tls-key")):
            object.__setattr__(self, name, _readable(getattr(self, name), flag))

    @classmethod
    def from_args(cls, ca: Path | None, cert: Path | None = None, key: Path | None = None) -> ClientTls | None:
        """TLS from CLI flags, or None when none is given (plain gRPC)."""
        return cls(ca, cert, key) if (ca or cert or key) else None

    @classmethod
    def from_env(cls) -> ClientTls | None:
        """TLS from QUANTSERVE_TLS_CA / _CERT / _KEY, or None when unset."""
        values = [os.environ.get(name) or None for name in (ENV_CA, ENV_CERT, ENV_KEY)]
        return cls.from_args(*(Path(v) if v else None for v in values))

    def env(self) -> dict[str, str]:
        """The same settings as environment variables (for child processes: Locust, the evaluator)."""
        pairs = ((ENV_CA, self.ca), (ENV_CERT, self.cert), (ENV_KEY, self.key))
        return {name: str(value) for name, value in pairs if value is not None}

    def grpc_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `tritonclient.grpc.InferenceServerClient`."""
        return {
            "ssl": True,
            "root_certificates": str(self.ca) if self.ca else None,
            "private_key": str(self.key) if self.key else None,
            "certificate_chain": str(self.cert) if self.cert else None,
        }


WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")  # bind addresses meaning "every interface"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; 0.0.0.0 and real addresses are exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def connect_host(bind_host: str) -> str:
    """The address a client on this machine dials for a server bound to `bind_host` (a wildcard: loopback)."""
    return "127.0.0.1" if bind_host in WILDCARD_HOSTS else bind_host


def reaches_this_machine(host: str) -> bool:
    """True for loopback names and the wildcard bind addresses: a local client reaches either here."""
    return host in WILDCARD_HOSTS or is_loopback(host)

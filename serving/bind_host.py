"""--host as tritonserver binds it: one address, spelled the way each of its endpoints takes it.

Triton's HTTP and metrics endpoints take only an address: a host *name* is parsed as an invalid IP and bound to
255.255.255.255 (probe C, session 64: `serve --host localhost` never came up while gRPC, which resolves names,
bound 127.0.0.1). So a name is resolved here to one address (IPv4 first, as Triton's gRPC picks it), and all three
endpoints bind that. An IPv6 literal is spelled per endpoint, as measured on Triton 2.51: gRPC `[::1]`, HTTP and
metrics `ipv6:::1` (the documented `ipv6:[::1]` bound every address, `[::]`).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from quantserve.errors import QuantserveError

WILDCARDS = {"": "0.0.0.0", "[::]": "::"}  # spellings of "every address" as the address to bind


@functools.lru_cache(maxsize=64)
def bind_address(host: str) -> str:
    """The address `host` binds: itself where it is an address (IPv6 without brackets), else the first IPv4 address
    its name resolves to (else its first IPv6 one); a name that resolves to none is one line naming --host.

    A name is resolved once per process: every restart of a serve binds what its start bound and checked."""
    host = WILDCARDS.get(host, host)
    literal = _literal(host)
    if literal is not None:
        return literal
    try:
        found = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise QuantserveError(
            f"--host {host}: no address found for this name ({why}); give a name or address of this machine with --host"
        ) from exc
    addresses = [str(info[4][0]) for info in found]
    return next((a for a in addresses if ":" not in a), addresses[0])


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def is_ipv6(address: str) -> bool:
    return ":" in address


def family(address: str) -> socket.AddressFamily:
    """The socket family that binds `address` (an address from `bind_address`)."""
    return socket.AF_INET6 if is_ipv6(address) else socket.AF_INET


def triton_address(role: str, address: str) -> str:
    """`address` as tritonserver's --grpc-address, --http-address or --metrics-address takes it."""
    if not is_ipv6(address):
        return address
    return f"[{address}]" if role == "grpc" else f"ipv6:{address}"


def url_host(host: str) -> str:
    """`host` as the host part of a URL (`host:port`): an IPv6 literal in brackets."""
    return f"[{host}]" if is_ipv6(host) and not host.startswith("[") else host

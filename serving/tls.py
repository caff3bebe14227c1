"""TLS settings for the server's gRPC endpoint and for the clients that call it.

Triton 2.51 serves TLS on gRPC only (`--grpc-use-ssl`, `--grpc-server-cert`, `--grpc-server-key`,
and with a client CA `--grpc-use-ssl-mutual` + `--grpc-root-cert`); its HTTP endpoint has no TLS,
so with TLS on quantserve keeps HTTP and metrics on loopback.

Both sides check their PEM files before use, each mistake in one line (neither Triton nor gRPC names the
file at fault: a key of another certificate made tritonserver exit under a false "Socket already in use", and
a client only ever saw "no Triton server answers"): a certificate file holds certificates, a key file a key,
the key matches the certificate, and each certificate is within its dates. The dates and the certificates'
names are read with `cryptography` where installed; Python's `ssl` (the same OpenSSL) checks the rest.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError

ENV_CA, ENV_CERT, ENV_KEY = "QUANTSERVE_TLS_CA", "QUANTSERVE_TLS_CERT", "QUANTSERVE_TLS_KEY"
EXPIRY_NOTICE = dt.timedelta(days=7)  # a server certificate expiring sooner is warned of at start and while serving


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
        check_key_pair(self.cert, "--tls-cert", self.key, "--tls-key")
        if self.client_ca is not None:
            check_ca_file(self.client_ca, "--tls-client-ca")

    def expiry_note(self, now: dt.datetime | None = None) -> tuple[str, str] | None:
        """("expires" | "expired" | "unreadable", a warning) where the server's certificate has expired, expires
        within EXPIRY_NOTICE or cannot be read, else None (and without `cryptography`, which reads the dates).

        Checked at start only, a serve started 4 min before its certificate expired said nothing, kept serving it
        past expiry in silence (every TLS client refused), and restarted tritonserver on it after a crash: "ready
        again" (session 45). The file is read each time: a certificate renewed in place is what the next
        tritonserver start serves."""
        try:
            certificates = pem_certificates(self.cert, "--tls-cert")
        except OSError as exc:
            return "unreadable", f"--tls-cert {self.cert}: {exc.strerror or exc}; a restart cannot serve TLS from it"
        except QuantserveError as exc:
            return "unreadable", f"{exc}; a restart cannot serve TLS from it"
        if not certificates:
            return None
        ends = min(c.not_valid_after_utc for c in certificates)
        now = now or dt.datetime.now(dt.UTC)
        when = f"{ends:%Y-%m-%d %H:%M} UTC"
        if ends <= now:
            return "expired", f"--tls-cert {self.cert} expired on {when}: every TLS client refuses it; renew the file"
        if ends - now <= EXPIRY_NOTICE:
            left = ends - now
            hours, minutes = divmod(int(left.total_seconds() // 60), 60)
            span = f"{left.days} d" if left.days else f"{hours} h {minutes} min" if hours else f"{minutes} min"
            return "expires", f"--tls-cert {self.cert} expires on {when} (in {span}): then every TLS client refuses it"
        return None

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
        if self.ca is not None:
            check_ca_file(self.ca, "--tls-ca")
        if self.cert is not None and self.key is not None:
            check_key_pair(self.cert, "--tls-cert", self.key, "--tls-key")

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


def check_key_pair(cert: Path, cert_flag: str, key: Path, key_flag: str) -> None:
    """One line if `cert` holds no usable certificate, `key` no private key, the two do not match, or a certificate
    is outside its dates."""
    certificates = pem_certificates(cert, cert_flag)
    data = key.read_bytes()
    if b"PRIVATE KEY-----" not in data:
        holds = " (it holds a certificate: are --tls-cert and --tls-key swapped?)" if _CERT_PEM in data else ""
        raise QuantserveError(f"{key_flag} {key}: no PEM private key in it{holds}")
    try:  # the password is never asked for on the terminal: gRPC cannot use an encrypted key anyway
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise QuantserveError(
                f"{key_flag} {key} does not match {cert_flag} {cert} (the key of another certificate)"
            ) from exc
        raise QuantserveError(
            f"{cert_flag} {cert} with {key_flag} {key}: unusable ({_reason(exc)}; an encrypted key is not supported)"
        ) from exc
    check_dates(certificates, cert, cert_flag)


def check_ca_file(ca: Path, flag: str) -> None:
    """One line if `ca` holds no certificate OpenSSL can trust, or one outside its dates."""
    certificates = pem_certificates(ca, flag)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise QuantserveError(f"{flag} {ca}: not a usable CA certificate ({_reason(exc)})") from exc
    check_dates(certificates, ca, flag, any_will_do=True)


_CERT_PEM = b"-----BEGIN CERTIFICATE-----"


def pem_certificates(path: Path, flag: str) -> list[Any]:
    """The certificates in a PEM file (`cryptography` objects; none listed where it is not installed)."""
    data = path.read_bytes()
    if _CERT_PEM not in data:
        holds = f" (it holds a private key: {_key_hint(flag)})" if b"PRIVATE KEY-----" in data else ""
        raise QuantserveError(f"{flag} {path}: no PEM certificate in it{holds}")
    try:
        from cryptography import x509
    except ImportError:
        return []
    try:
        return list(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise QuantserveError(f"{flag} {path}: not a readable PEM certificate ({exc})") from exc


def _key_hint(flag: str) -> str:
    """What a key given where a certificate belongs means: swapped with --tls-key, or a CA flag given a key."""
    if flag == "--tls-cert":
        return "are --tls-cert and --tls-key swapped?"
    return f"{flag} takes the CA's certificate, not a key"


def check_dates(certificates: list[Any], path: Path, flag: str, any_will_do: bool = False) -> None:
    """One line for a certificate that has expired or is not valid yet (peers would refuse it): the first one, or
    with `any_will_do` (a CA bundle, where one good root suffices) only when none is within its dates."""
    problems = [_date_problem(certificate) for certificate in certificates]
    if any_will_do and None in problems:
        return
    problem = next((p for p in problems if p is not None), None)
    if problem is not None:
        raise QuantserveError(f"{flag} {path}: {problem}")


def _date_problem(certificate: Any) -> str | None:
    subject = certificate.subject.rfc4514_string() or "(no subject)"
    now = dt.datetime.now(dt.UTC)
    if certificate.not_valid_after_utc < now:
        return (
            f"certificate '{subject}' expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; issue a new one"
        )
    if certificate.not_valid_before_utc > now:
        begins = f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        return f"certificate '{subject}' is not valid before {begins} (is this machine's clock right?)"
    return None


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).lower().replace("_", " ")


HANDSHAKE_TIMEOUT_S = 3.0
# OpenSSL's verification codes a client meets most (x509_vfy.h), as what they mean to whoever runs it.
NOT_SIGNED_BY_CA = (2, 18, 19, 20, 21)  # issuer unknown, self-signed, unable to verify the leaf
EXPIRED, NOT_YET_VALID, HOSTNAME_MISMATCH = 10, 9, 62
# TLS alerts a server sends about the client's certificate (OpenSSL reason names).
CLIENT_CERT_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "requires a client certificate: pass --tls-cert and --tls-key",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "refused the handshake (a client certificate required?): pass --tls-cert and "
    "--tls-key",
    "TLSV1_ALERT_UNKNOWN_CA": "does not know the CA of the client certificate (is it signed by the server's "
    "--tls-client-ca?)",
}


def tls_problem(url: str, tls: ClientTls | None, timeout_s: float = HANDSHAKE_TIMEOUT_S) -> str | None:
    """Why the gRPC server at `url` (host:port) does not answer a client with these TLS settings, where TLS is the
    reason; None where it is not (nothing listens, the handshake succeeds, or no answer in `timeout_s`).

    A TLS handshake as the client makes it (the same CA, certificate and key), then one read: under TLS 1.3 a
    server refuses a client certificate only after the handshake.
    """
    host, _, port = url.rpartition(":")
    if not port.isdigit():
        return None
    host = host.strip("[]")
    try:
        connection = socket.create_connection((host, int(port)), timeout=timeout_s)
    except OSError:
        return None
    with connection:
        return _handshake_problem(connection, host, tls)


def _handshake_problem(connection: socket.socket, host: str, tls: ClientTls | None) -> str | None:
    try:
        with _client_context(tls).wrap_socket(connection, server_hostname=host) as channel:
            if tls is None:
                return "serves gRPC over TLS: pass --tls-ca (the CA that signed its certificate)"
            if channel.recv(1) == b"":  # a gRPC server speaks first (its HTTP/2 settings): this one hung up
                return _hung_up(tls)
    except ssl.SSLCertVerificationError as exc:
        return _verify_problem(exc, host, tls)
    except ssl.SSLError as exc:
        return _refusal(exc, tls)
    except OSError:  # reset, or no answer within the timeout: not a TLS matter this client can name
        return None
    return None


def _hung_up(tls: ClientTls) -> str:
    """What a server that closes the connection right after the handshake (TLS 1.3) means: no client certificate
    it accepts."""
    if tls.cert is None:
        return "the server requires a client certificate: pass --tls-cert and --tls-key (mutual TLS)"
    return f"the server refused the client certificate {tls.cert} (is it signed by the server's --tls-client-ca?)"


def _client_context(tls: ClientTls | None) -> ssl.SSLContext:
    if tls is None:  # a plain client: does the server speak TLS at all?
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=tls.ca)
        if tls.cert is not None:
            context.load_cert_chain(tls.cert, tls.key, password=lambda: b"")
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    return context


def _verify_problem(exc: ssl.SSLCertVerificationError, host: str, tls: ClientTls | None) -> str:
    trusted = f"--tls-ca {tls.ca}" if tls is not None and tls.ca is not None else "a CA this machine trusts (--tls-ca)"
    if exc.verify_code == EXPIRED:
        return "the server's certificate has expired (TLS handshake): the server needs a new one"
    if exc.verify_code == NOT_YET_VALID:
        return "the server's certificate is not valid yet (TLS handshake): is either machine's clock wrong?"
    if exc.verify_code in NOT_SIGNED_BY_CA:
        return f"the server's certificate is not signed by {trusted} (TLS handshake: {exc.verify_message})"
    if exc.verify_code == HOSTNAME_MISMATCH:
        return f"the server's certificate is not for '{host}' (TLS handshake): connect by a name it holds"
    return f"the server's certificate does not verify (TLS handshake: {exc.verify_message})"


def _refusal(exc: ssl.SSLError, tls: ClientTls | None) -> str | None:
    reason = str(exc.reason or "")
    if tls is None:
        return None
    if reason in CLIENT_CERT_ALERTS:
        return f"the server {CLIENT_CERT_ALERTS[reason]}"
    if "ALERT" in reason and tls.cert is not None:
        return f"the server refused the client certificate {tls.cert} (TLS alert: {_reason(exc)})"
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return "no TLS handshake: the server may serve plain gRPC (leave out --tls-ca)"
    return f"TLS handshake failed ({_reason(exc)})"


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

"""A private key given where a CA certificate belongs (probe C, session 64): the line named --tls-cert and --tls-key
("swapped?"), not the flag at fault, --tls-client-ca or --tls-ca."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from quantserve.errors import QuantserveError
from serving.tls import ClientTls, ServerTls


def test_a_key_given_as_a_ca_names_the_ca_flag(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    cert, key = tmp_path / "srv.pem", tmp_path / "srv.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    with pytest.raises(QuantserveError) as served:
        ServerTls(cert, key, client_ca=key)
    assert "--tls-client-ca" in str(served.value) and "swapped" not in str(served.value)
    with pytest.raises(QuantserveError) as client:
        ClientTls(key)
    assert "--tls-ca" in str(client.value) and "swapped" not in str(client.value)

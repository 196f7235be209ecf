"""The OAuth2 tests' servers: a loopback token server and a Dovecot in oauth mode that asks it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures.servers import CertPair, DovecotServer, make_self_signed_cert, start_dovecot
from fixtures.token_server import TokenServer


@pytest.fixture(scope="session")
def token_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return make_self_signed_cert(tmp_path_factory.mktemp("token-tls"))


@pytest.fixture(scope="session")
def token_server(token_cert: CertPair) -> Iterator[TokenServer]:
    server = TokenServer(cert=token_cert)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dovecot_oauth(token_server: TokenServer) -> Iterator[DovecotServer]:
    """Dovecot with an `oauth2` passdb validating tokens at the token server (passwords work too)."""
    server = start_dovecot(introspection_url=token_server.introspection_url)
    try:
        yield server
    finally:
        server.stop()

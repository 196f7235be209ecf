"""Shared fixtures. The real-server ones (Dovecot, SMTP capture, PostgreSQL) live in fixtures/servers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.servers import (
    dovecot,
    imap_user,
    postgres,
    postgres_url,
    smtp_server,
    tls_cert,
)

__all__ = ["database_url", "dovecot", "imap_user", "postgres", "postgres_url", "smtp_server", "tls_cert"]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store-touching test runs against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url

"""Shared fixtures. The real-server ones (Dovecot, SMTP capture, PostgreSQL) live in fixtures/servers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fixtures.servers import (
    dovecot,
    imap_user,
    postgres,
    postgres_url,
    smtp_server,
    tls_cert,
)

from mailbot.store.db import make_engine, upgrade

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "database_url",
    "dovecot",
    "engine",
    "imap_user",
    "postgres",
    "postgres_url",
    "smtp_server",
    "tls_cert",
]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store-touching test runs against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty store on that database."""
    upgrade(database_url)
    made = make_engine(database_url)
    yield made
    made.dispose()

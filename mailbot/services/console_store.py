"""The database engine for the console and its commands, so entry points need not import the store."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from mailbot.store.db import make_engine, upgrade


def open_engine(url: str, *, migrate: bool = False) -> Engine:
    """An engine on `url`; with `migrate`, the schema is brought up to date first (idempotent)."""
    if migrate:
        upgrade(url)
    return make_engine(url)

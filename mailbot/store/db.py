"""The database engine (SQLite in WAL mode, or PostgreSQL) and schema migrations.

SQLite is the embedded default; its writers take the lock up front (BEGIN IMMEDIATE) so the
worker and a staff command never deadlock upgrading a read lock to a write lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
WRITE = "mailbot_write"  # execution option marking a session that will write
UPGRADE_HINT = "run `mailbot db upgrade` first"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (legacy mode) so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front so two of them never deadlock upgrading a read lock; readers
        # start a deferred transaction, which in WAL mode never blocks the worker.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine.execution_options(**{WRITE: True}), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (creating the database file for SQLite)."""
    make_engine(url).dispose()
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_problem(url: str) -> str | None:
    """Why this database cannot serve mailbot's commands yet, or None when its schema is current.

    Staff commands on a database that was never upgraded would otherwise fail deep inside a query
    ("no such table: case"). Checked without creating anything: an SQLite file that does not exist
    is reported, not created empty. The answer never contains the URL (it may carry a password).
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in {None, "", ":memory:"}
    if on_disk and not Path(str(parsed.database)).is_file():
        return f"there is no database at {parsed.database} yet; {UPGRADE_HINT}"

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    if not current:
        return f"the database has no mailbot tables yet; {UPGRADE_HINT}"
    if current != heads:
        known = {rev.revision for rev in script.walk_revisions()}
        if current - known:
            return (
                f"the database schema is at revision {', '.join(sorted(current))}, "
                "which this mailbot does not know: it was upgraded by a newer mailbot; run that version"
            )
        return (
            f"the database schema is at revision {', '.join(sorted(current))}, an older one; {UPGRADE_HINT}"
        )
    return None

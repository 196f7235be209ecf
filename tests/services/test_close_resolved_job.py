"""The worker closes resolved cases after `[cases] close_resolved_after_days` (issue 8), on SQLite and
PostgreSQL: a case opened by the real intake, resolved by staff, then the worker's daily job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.configs import maildir_config, make_maildirs
from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.runtime import Runtime, build_runtime
from mailbot.services import casework
from mailbot.settings import SettingsError, load_settings
from mailbot.store.db import session_scope, upgrade
from mailbot.store.tables import Case
from mailbot.worker import Worker

REPO = Path(__file__).resolve().parents[2]
MAIL = REPO / "rules" / "tests" / "mail" / "cancellation-with-order.eml"
def config(root: Path, url: str, cases: str) -> Path:
    path = root / "config.toml"
    text = maildir_config(url, rules=REPO / "rules", templates=REPO / "templates", top=cases)
    path.write_text(text, encoding="utf-8")
    make_maildirs(root)
    return path


def resolved_case(root: Path, runtime: Runtime, days_ago: float) -> str:
    # A different buyer each time, so each mail opens its own case.
    raw = (
        MAIL.read_text().replace("maria.lopez@", f"buyer{days_ago}@").replace("-cancel-01@", f"-{days_ago}@")
    )
    (root / "mail" / "pm" / "new" / f"{days_ago}.eml").write_text(raw)
    (ref,) = runtime.poll("pm").cases_created
    casework.set_status(runtime.engine, ref, "resolved", by="ana@support.example")
    with session_scope(runtime.engine) as session:
        then = datetime.now(UTC) - timedelta(days=days_ago)
        session.execute(update(Case).where(Case.ref == ref).values(resolved_at=then))  # type: ignore[arg-type]
    return ref


def status(runtime: Runtime, ref: str) -> str:
    with Session(runtime.engine) as session:
        return session.exec(select(Case.status).where(Case.ref == ref)).one()


def test_the_daily_job_closes_cases_resolved_longer_ago_than_configured(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    runtime = build_runtime(
        load_settings(config(tmp_path, database_url, "[cases]\nclose_resolved_after_days = 3"))
    )
    old = resolved_case(tmp_path, runtime, days_ago=4)
    recent = resolved_case(tmp_path, runtime, days_ago=2)

    Worker(runtime)._close_resolved_job()

    assert status(runtime, old) == "closed"
    assert status(runtime, recent) == "resolved"
    runtime.engine.dispose()


def test_resolved_cases_close_after_seven_days_by_default(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "sqlite:///mailbot.db", ""))
    assert settings.cases.close_resolved_after_days == 7


def test_a_close_after_of_zero_days_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = config(tmp_path, "sqlite:///mailbot.db", "[cases]\nclose_resolved_after_days = 0")
    with pytest.raises(SettingsError, match=r"cases\.close_resolved_after_days"):
        load_settings(path)

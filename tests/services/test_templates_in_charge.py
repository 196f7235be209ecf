"""The worker's replies come from the templates in charge: a broken edit on disk is refused and buyers keep
getting the last good wording, through the real ingest, store and outbox; every decision records the
rule-set version that includes those templates."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from fixtures.configs import maildir_config, make_maildirs
from sqlmodel import Session, select

from mailbot.runtime import Runtime, build_runtime
from mailbot.settings import load_settings
from mailbot.store.tables import MailRecord

REPO = Path(__file__).resolve().parents[2]
MAIL = REPO / "rules" / "tests" / "mail" / "cancellation-with-order.eml"
CANCELLATION = "en/cancellation_received.txt.j2"
def installation(root: Path) -> Runtime:
    shutil.copytree(REPO / "templates", root / "templates")
    good = root / "templates" / CANCELLATION
    good.write_text("Dear {{ buyer_name }},\n\nGOOD WORDING for case {{ case_ref }}.\n", encoding="utf-8")
    (root / "config.toml").write_text(
        maildir_config(f"sqlite:///{root / 'mailbot.db'}", rules=REPO / "rules"), encoding="utf-8"
    )
    make_maildirs(root)
    return build_runtime(load_settings(root / "config.toml"))


def wait_until_refused(runtime: Runtime, timeout: float = 30.0) -> None:
    """The watcher looks at the templates folder every few seconds; wait for it to refuse the edit."""
    deadline = time.monotonic() + timeout
    while runtime.rules.status().ok:
        assert time.monotonic() < deadline, "the broken template was never noticed"
        runtime.rules.current()
        time.sleep(0.05)


def test_a_broken_template_edit_leaves_buyers_the_last_good_reply(tmp_path: Path) -> None:
    runtime = installation(tmp_path)
    in_charge = runtime.rules.current()
    (tmp_path / "templates" / CANCELLATION).write_text("Dear {{ buyer_name }},\n{% if orders %}\n")
    wait_until_refused(runtime)
    assert runtime.rules.current() is in_charge
    assert f"{CANCELLATION}:2: syntax error" in (runtime.rules.status().error or "")

    shutil.copy(MAIL, tmp_path / "mail" / "pm" / "new" / "1.eml")
    report = runtime.poll("pm")
    assert report.ok and report.replies_queued == 1
    runtime.drain()
    (sent,) = (tmp_path / "var" / "outbox").glob("*.eml")
    assert "GOOD WORDING for case" in sent.read_text(encoding="utf-8")
    with Session(runtime.engine) as session:
        (record,) = session.exec(select(MailRecord)).all()
    assert record.ruleset_version == in_charge.version
    assert "templates/en/cancellation_received.txt.j2" in in_charge.file_texts()

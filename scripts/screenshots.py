"""The console screenshots in docs/ (queue, one case, the reply form), taken in Debian's chromium.

    PYTHONPATH=. .venv/bin/python scripts/screenshots.py [--out docs]

Builds a throwaway demo installation (SQLite, Maildirs seeded with the example mail, the console's
test mail and a dozen held-out buyer mails in several languages), runs the real intake, spreads the
cases over the last working days so the due-time policy marks some overdue and some due soon, works
a few of them as staff would, serves the console on a loopback port at 1280 px and saves
console-queue.png, console-case.png and console-reply.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from playwright.sync_api import sync_playwright  # noqa: E402
from sqlmodel import select  # noqa: E402

from mailbot.services import casework, casework_view, manual_reply  # noqa: E402
from mailbot.services.due_times import fill_due_times  # noqa: E402
from mailbot.settings_due import DueSettings  # noqa: E402
from mailbot.store.db import session_scope  # noqa: E402
from mailbot.store.tables import Case  # noqa: E402
from tests.console.browser import CHROMIUM_ARGS, serve  # noqa: E402
from tests.console.installation import PASSWORD, Installation, make_installation  # noqa: E402

HELDOUT = REPO / "tests" / "eml" / "heldout"
DEMO_HELDOUT = ("002", "004", "005", "011", "015", "019", "023", "027", "031", "036", "044", "053")
# Working hours each kind of case may wait (the [due] section of a real config.toml).
POLICY = DueSettings(
    policy={
        "*": {"low": 24, "normal": 16, "high": 8, "urgent": 4},
        "cancellation": {"low": 16, "normal": 8, "high": 4, "urgent": 2},
        "report_dispute": {"low": 8, "normal": 4, "high": 3, "urgent": 2},
    },
    due_soon_hours=3,
)
# How long ago each case (in intake order) was opened: a spread over the last three days.
AGES_HOURS = (1, 3, 5, 7, 22, 26, 29, 47, 50, 52, 70, 74, 0.5, 2, 4, 6, 24, 28, 30, 49)
STAFF = "ana@support.example"


def seed(inst: Installation) -> list[str]:
    for box in ("pm", "inspection"):
        for eml in sorted((REPO / "examples" / "mail" / box).glob("*.eml")):
            inst.deliver(box, eml.read_bytes())
    for number in DEMO_HELDOUT:
        raw = (HELDOUT / f"heldout-{number}.eml").read_bytes()
        box = "inspection" if b"ta-inspection@" in raw.split(b"\r\n\r\n", 1)[0] else "pm"
        inst.deliver(box, raw)
    inst.deliver_file("pm", "console-photo.eml")
    return inst.poll()


def spread_over_days(inst: Installation, refs: list[str], now: datetime) -> None:
    """Back-date the demo cases and give them the due times of the policy, as if opened over days."""
    with session_scope(inst.engine) as session:
        for ref, age in zip(refs, AGES_HOURS * 3, strict=False):
            case = session.exec(select(Case).where(Case.ref == ref)).one()
            case.created_at = case.updated_at = now - timedelta(hours=age)
            case.due_at = None
            session.add(case)
    fill_due_times(inst.engine, POLICY)


def work(inst: Installation, refs: list[str]) -> str:
    """What a morning of case work leaves behind; returns the photo case (the one the shots open)."""
    found = casework_view.queue_page(inst.engine, casework_view.QueueFilters(search="3909797815690838"))
    photo = found.cases[0].ref
    others = [r for r in refs if r != photo]
    inst.user("li@support.example")
    casework.assign(inst.engine, photo, STAFF, by=STAFF)
    casework.add_note(inst.engine, photo, "Asked the supplier for the shipping date.", by=STAFF)
    casework.assign(inst.engine, others[1], "li@support.example", by="li@support.example")
    casework.assign(inst.engine, others[4], STAFF, by=STAFF)
    casework.set_status(inst.engine, others[2], "waiting", by=STAFF)
    casework.set_status(inst.engine, others[6], "resolved", by="li@support.example")
    return photo


def sign_in(page: Any, url: str, path: str) -> None:
    page.goto(f"{url}/login?next={path}")
    page.fill("input[name=email]", STAFF)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header.top nav")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inst = make_installation(root, f"sqlite:///{root / 'mailbot.db'}")
        refs = seed(inst)
        inst.user(STAFF, "supervisor")
        spread_over_days(inst, refs, datetime.now(UTC))
        photo = work(inst, refs)
        inst.runtime.drain()  # the automatic replies "sent" (into the outbox folder: no SMTP here)
        replies = manual_reply.setup_from_settings(inst.runtime.settings)
        with serve(inst.engine, replies, POLICY) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            sign_in(page, url, "/cases")
            page.wait_for_selector("table.queue tr.row")
            page.screenshot(path=str(args.out / "console-queue.png"), full_page=True)
            page.goto(f"{url}/cases/{photo}")
            page.wait_for_function(
                "() => { const i = document.querySelector('img.preview');"
                " return i && i.complete && i.naturalWidth > 0; }"
            )
            page.screenshot(path=str(args.out / "console-case.png"), full_page=True)
            page.goto(f"{url}/cases/{photo}/reply?macro=cancellation_confirmed")
            page.wait_for_selector("form.compose")
            page.click("button:has-text('Preview')")
            page.wait_for_selector("#reply-body")
            page.screenshot(path=str(args.out / "console-reply.png"), full_page=True)
            browser.close()
        inst.engine.dispose()
    print(f"wrote console-queue.png, console-case.png and console-reply.png to {args.out}")


if __name__ == "__main__":
    main()

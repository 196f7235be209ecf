"""Screenshots of the staff console for docs/: the queue and one case, taken in Debian's chromium.

    PYTHONPATH=. .venv/bin/python scripts/console_screenshots.py [--out docs]

Builds a throwaway installation (SQLite, Maildirs seeded with the example mail and the console's
test mail), runs the real intake, works two cases a little, serves the console on a loopback port
and saves console-queue.png and console-case.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from mailbot.services import casework, casework_view  # noqa: E402
from tests.console.browser import CHROMIUM_ARGS, serve  # noqa: E402
from tests.console.installation import PASSWORD, make_installation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inst = make_installation(root, f"sqlite:///{root / 'mailbot.db'}")
        for box in ("pm", "inspection"):
            for eml in sorted((REPO / "examples" / "mail" / box).glob("*.eml")):
                inst.deliver(box, eml.read_bytes())
        inst.deliver_file("pm", "console-photo.eml")
        refs = inst.poll()
        inst.user("ana@support.example", "supervisor")
        found = casework_view.queue_page(inst.engine, casework_view.QueueFilters(search="3909797815690838"))
        photo = found.cases[0].ref
        casework.assign(inst.engine, photo, "ana@support.example", by="ana@support.example")
        casework.add_note(
            inst.engine, photo, "Asked the supplier for the shipping date.", by="ana@support.example"
        )
        casework.set_status(
            inst.engine, next(r for r in refs if r != photo), "waiting", by="ana@support.example"
        )
        with serve(inst.engine) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(url + "/login")
            page.fill("input[name=email]", "ana@support.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("table.queue")
            args.out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out / "console-queue.png"))
            page.goto(f"{url}/cases/{photo}")
            page.wait_for_selector("img.preview")
            page.screenshot(path=str(args.out / "console-case.png"), full_page=True)
            browser.close()
        inst.engine.dispose()
    print(f"wrote {args.out / 'console-queue.png'} and {args.out / 'console-case.png'}")


if __name__ == "__main__":
    main()

"""A screenshot of the console's reply form for docs/, taken in Debian's chromium.

    PYTHONPATH=. .venv/bin/python scripts/reply_form_screenshot.py [--out docs]

Builds a throwaway installation (SQLite, a Maildir holding the console's test mail), runs the real
intake, serves the console with replies enabled and saves console-reply.png: a template reply
previewed, ready to send, with the canned responses above it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from mailbot.services import manual_reply  # noqa: E402
from tests.console.browser import CHROMIUM_ARGS, serve  # noqa: E402
from tests.console.installation import PASSWORD, make_installation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inst = make_installation(root, f"sqlite:///{root / 'mailbot.db'}")
        inst.deliver_file("pm", "console-photo.eml")
        ref = inst.poll()[0]
        inst.user("ana@support.example")
        replies = manual_reply.setup_from_settings(inst.runtime.settings)
        with serve(inst.engine, replies) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{url}/login?next=/cases/{ref}/reply%3Fmacro%3Dcancellation_confirmed")
            page.fill("input[name=email]", "ana@support.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("form.compose")
            page.click("button:has-text('Preview')")
            page.wait_for_selector("#reply-body")
            args.out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out / "console-reply.png"), full_page=True)
            browser.close()
        inst.engine.dispose()
    print(f"wrote {args.out / 'console-reply.png'}")


if __name__ == "__main__":
    main()

"""In a real browser: a supervisor corrects what mailbot decided and downloads the corrections export,
which the real `mailbot eval` command reads as a labelled set."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import serve, sign_in, watched_page
from .installation import REPO, Installation

SUPERVISOR = "sup@support.example"


@pytest.fixture
def console(sqlite_installation: Installation) -> Iterator[str]:
    with serve(sqlite_installation.engine) as url:
        yield url


@pytest.fixture
def page(chromium: Any, console: str) -> Iterator[Any]:
    with watched_page(chromium) as watched:
        yield watched


def test_a_supervisor_corrects_a_case_and_mailbot_eval_reads_the_downloaded_export(
    page: Any, console: str, sqlite_installation: Installation, tmp_path: Path
) -> None:
    sqlite_installation.deliver_file("pm", "console-photo.eml")
    (ref,) = sqlite_installation.poll()
    sqlite_installation.user(SUPERVISOR, "supervisor")
    sign_in(page, console, SUPERVISOR, f"/cases/{ref}")
    said = page.input_value("form.correct input[name=value]")
    assert said and said != "report_dispute"

    page.fill("form.correct input[name=value]", "report_dispute")
    page.click("button:has-text('Correct category')")
    page.wait_for_selector(f"p.flash:has-text('category {said} → report_dispute by {SUPERVISOR}')")
    page.select_option("form.correct select[name=value]", "report_dispute")
    page.click("button:has-text('Correct intent')")
    page.wait_for_selector("p.flash:has-text('intent cancellation → report_dispute')")

    page.click("header.top nav >> text=Corrections")
    page.wait_for_selector(f"table.queue a:has-text('{ref}')")
    with page.expect_download() as download:
        page.click("text=Download the export")
    assert download.value.suggested_filename.startswith("mailbot-corrections-")
    folder = tmp_path / "export"
    with zipfile.ZipFile(download.value.path()) as archive:
        archive.extractall(folder)
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 1
    assert labels[0]["category"] == "report_dispute" and labels[0]["intent"] == "report_dispute"
    assert labels[0]["mailbot_said"] == {"intent": "cancellation", "category": said}

    evaluated = subprocess.run(
        [sys.executable, "-m", "mailbot", "eval", str(folder), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["n"] == 1
    # the rules still read it as a cancellation: the export is exactly the mistake staff corrected
    failure = {(f["file"], f["field"]): f for f in report["failures"]}[(labels[0]["file"], "intent")]
    assert (failure["expected"], failure["got"]) == ("report_dispute", "cancellation")
    assert page.csp_violations == []

"""A new user's first ten minutes: the README's two commands work on a fresh clone."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_readme_names_exactly_two_commands_and_ci_runs_the_second() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[1].strip() in (REPO / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_fresh_clone_runs_the_main_job_and_the_test_command(tmp_path: Path) -> None:
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs on a clone, but this is not a git checkout")
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILBOT_", "VIRTUAL_ENV", "PYTEST"))}
    main_job, test_command = readme_commands()

    demo = subprocess.run(
        ["bash", "-c", main_job], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Cases opened (" in demo.stdout and "Replies written to" in demo.stdout
    assert list((clone / "demo" / "var" / "outbox").glob("*.eml"))

    # The whole suite would run this test again; the same command with a pytest selection stays finite.
    tests = subprocess.run(
        ["bash", "-c", f"{test_command} tests/unit -q"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout

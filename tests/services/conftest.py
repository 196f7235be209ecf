"""Fixtures for end-to-end intake: a config pointing at the real Dovecot and SMTP capture server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures.intake import REPO, Env, write_config
from fixtures.servers import SPARE_USERS, DovecotServer, SmtpCapture

_pairs = itertools.count()


@pytest.fixture
def make_env(
    dovecot: DovecotServer, smtp_server: SmtpCapture, database_url: str, tmp_path: Path
) -> Iterator[Callable[..., Env]]:
    def make(processed_action: str = "flag") -> Env:
        n = next(_pairs)
        users = {
            "pm": SPARE_USERS[(2 * n) % len(SPARE_USERS)],
            "inspection": SPARE_USERS[(2 * n + 1) % len(SPARE_USERS)],
        }
        for user in users.values():
            dovecot.clean(user)
        config = write_config(
            tmp_path, dovecot, smtp_server, database_url, users, processed_action=processed_action
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
        env["MAILBOT_SECRET_PM_IMAP"] = dovecot.password(users["pm"])
        env["MAILBOT_SECRET_INSPECTION_IMAP"] = dovecot.password(users["inspection"])
        env["PYTHONPATH"] = str(REPO)
        return Env(dovecot=dovecot, smtp=smtp_server, config=config, users=users, env=env)

    yield make


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()

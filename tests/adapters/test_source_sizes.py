"""Sizes before fetching, and the header block alone: how a source avoids downloading a huge mail.

The same promises from the IMAP source (real Dovecot) and the Maildir source (files on disk).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.servers import DovecotServer

from mailbot.adapters.imap import ImapSource
from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.ports import HEADER_LIMIT

HEAD = (
    b"From: buyer@shop.example\r\nTo: ta-pm@example.test\r\n"
    b"Subject: big\r\nMessage-ID: <big@shop.example>\r\n"
)


def mail(body_bytes: int) -> bytes:
    return HEAD + b"\r\n" + b"x" * (body_bytes - 2) + b"\r\n"


@pytest.mark.imap
def test_imap_sizes_are_the_servers_and_missing_mail_is_left_out(
    dovecot: DovecotServer, imap_user: str
) -> None:
    small, big = mail(100), mail(300_000)
    uids = dovecot.append_many(imap_user, [small, big])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        sizes = source.sizes([*uids, uids[-1] + 50])

    assert sizes == {uids[0]: len(small), uids[1]: len(big)}


@pytest.mark.imap
def test_imap_fetch_headers_brings_the_header_block_and_the_whole_size(
    dovecot: DovecotServer, imap_user: str
) -> None:
    big = mail(300_000)
    uid = dovecot.append(imap_user, big)

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        (fetched,) = source.fetch_headers([uid])

    assert fetched.headers_only and fetched.raw == HEAD + b"\r\n"
    assert fetched.size == fetched.full_size == len(big)
    assert "\\Seen" not in dovecot.flags(imap_user)[uid]


@pytest.mark.imap
def test_imap_fetch_headers_stops_at_the_header_limit(dovecot: DovecotServer, imap_user: str) -> None:
    huge_head = HEAD + b"".join(b"X-Filler-%06d: %s\r\n" % (n, b"y" * 100) for n in range(3000))
    uid = dovecot.append(imap_user, huge_head + b"\r\nbody\r\n")

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        (fetched,) = source.fetch_headers([uid])

    assert len(fetched.raw) == HEADER_LIMIT


def maildir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for name, raw in files.items():
        (root / "new" / name).write_bytes(raw)
    return root


def test_maildir_sizes_come_from_stat(tmp_path: Path) -> None:
    small, big = mail(100), mail(300_000)
    with MaildirSource(maildir(tmp_path, {"1.a": small, "2.b": big})) as source:
        uids = source.new_uids(0)
        assert source.sizes([*uids, 99]) == {uids[0]: len(small), uids[1]: len(big)}


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_maildir_fetch_headers_reads_only_the_header_block(tmp_path: Path, newline: bytes) -> None:
    big = mail(300_000).replace(b"\r\n", newline)
    with MaildirSource(maildir(tmp_path, {"1.a": big})) as source:
        (fetched,) = source.fetch_headers(source.new_uids(0))

    assert fetched.raw == HEAD.replace(b"\r\n", newline) + newline
    assert fetched.headers_only and fetched.size == len(big)

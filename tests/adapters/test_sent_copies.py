"""Sent copies: after a crash the outbox asks "was this reply accepted?" by its Message-ID.

Both implementations answer the same questions, so the behaviours are specified once for both and
then the IMAP- and folder-specific details separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.servers import DovecotServer

from mailbot.adapters.imap import ImapConfig, ImapSentCopies
from mailbot.adapters.maildir import FolderSentCopies, message_file_name
from mailbot.adapters.ports import SentCopies, SourceError


def reply(message_id: str) -> bytes:
    return (
        f"From: ta-pm@example.test\r\nTo: buyer@example.test\r\nSubject: Re: your order\r\n"
        f"Message-ID: <{message_id}>\r\nAuto-Submitted: auto-replied\r\n\r\nThank you.\r\n"
    ).encode()


@pytest.fixture(params=[pytest.param("imap", marks=pytest.mark.imap), "folder"])
def copies(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SentCopies]:
    if request.param == "folder":
        yield FolderSentCopies(tmp_path / "sent")
        return
    dovecot: DovecotServer = request.getfixturevalue("dovecot")
    user: str = request.getfixturevalue("imap_user")
    with ImapSentCopies(dovecot.imap_config(user)) as sent:
        yield sent


def test_an_unknown_reply_is_not_there(copies: SentCopies) -> None:
    assert not copies.contains("r-1.case-42@mailbot.example.test")


def test_a_stored_reply_is_found_with_or_without_angle_brackets(copies: SentCopies) -> None:
    copies.put("r-1.case-42@mailbot.example.test", reply("r-1.case-42@mailbot.example.test"))

    assert copies.contains("r-1.case-42@mailbot.example.test")
    assert copies.contains("<r-1.case-42@mailbot.example.test>")


def test_only_an_identical_message_id_counts(copies: SentCopies) -> None:
    copies.put("r-10.case-42@mailbot.example.test", reply("r-10.case-42@mailbot.example.test"))

    assert not copies.contains("r-1")
    assert not copies.contains("r-1.case-42@mailbot.example.test")
    assert not copies.contains("0.case-42@mailbot.example.test")


def test_storing_the_same_reply_twice_is_harmless(copies: SentCopies) -> None:
    copies.put("r-2@mailbot.example.test", reply("r-2@mailbot.example.test"))
    copies.put("r-2@mailbot.example.test", reply("r-2@mailbot.example.test"))

    assert copies.contains("r-2@mailbot.example.test")


# -- IMAP ------------------------------------------------------------------------------------------


@pytest.mark.imap
def test_the_sent_folder_is_created_and_the_copy_is_stored_seen(
    dovecot: DovecotServer, imap_user: str
) -> None:
    assert "Sent" not in dovecot.folders(imap_user)

    with ImapSentCopies(dovecot.imap_config(imap_user)) as sent:
        sent.put("r-3@mailbot.example.test", reply("r-3@mailbot.example.test"))

    [stored] = dovecot.list_messages(imap_user, "Sent")
    assert stored.raw == reply("r-3@mailbot.example.test")
    assert "\\Seen" in stored.flags


@pytest.mark.imap
def test_the_configured_sent_folder_is_used(dovecot: DovecotServer, imap_user: str) -> None:
    with ImapSentCopies(dovecot.imap_config(imap_user, sent_folder="Gesendet")) as sent:
        sent.put("r-4@mailbot.example.test", reply("r-4@mailbot.example.test"))

    assert len(dovecot.list_messages(imap_user, "Gesendet")) == 1


@pytest.mark.imap
def test_it_connects_on_first_use_without_a_with_block(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.append(imap_user, reply("r-5@mailbot.example.test"), folder="Sent")
    sent = ImapSentCopies(dovecot.imap_config(imap_user))
    try:
        assert sent.contains("r-5@mailbot.example.test")
    finally:
        sent.close()


@pytest.mark.imap
def test_a_connection_dropped_by_the_server_is_reopened_once(dovecot: DovecotServer, imap_user: str) -> None:
    with ImapSentCopies(dovecot.imap_config(imap_user)) as sent:
        sent.put("r-6@mailbot.example.test", reply("r-6@mailbot.example.test"))
        dovecot.doveadm("kick", imap_user)  # the server ends every session of this user

        assert sent.contains("r-6@mailbot.example.test")


@pytest.mark.imap
def test_a_wrong_password_is_a_source_error(dovecot: DovecotServer, imap_user: str) -> None:
    sent = ImapSentCopies(dovecot.imap_config(imap_user, password="not-the-password"))

    with pytest.raises(SourceError, match=f"login failed for {imap_user}"):
        sent.contains("r-7@mailbot.example.test")


def test_imap_sent_copies_need_a_folder() -> None:
    with pytest.raises(ValueError, match="sent_folder"):
        ImapSentCopies(ImapConfig(host="127.0.0.1", username="u", password="p", sent_folder=None))


# -- folder ----------------------------------------------------------------------------------------


def test_a_folder_copy_is_the_exact_bytes_in_a_file_named_after_the_message_id(tmp_path: Path) -> None:
    sent = FolderSentCopies(tmp_path / "sent")

    sent.put("<r-8@mailbot.example.test>", reply("r-8@mailbot.example.test"))

    [written] = (tmp_path / "sent").iterdir()
    assert written.name == "r-8@mailbot.example.test.eml"
    assert written.read_bytes() == reply("r-8@mailbot.example.test")


def test_file_names_cannot_escape_the_folder_or_hide() -> None:
    assert message_file_name("../../etc/passwd@x") == "%2E.%2F..%2Fetc%2Fpasswd@x.eml"
    assert "/" not in message_file_name("a/b@c")
    assert not message_file_name(".hidden@x").startswith(".")


def test_distinct_message_ids_get_distinct_file_names() -> None:
    ids = ["a/b@x", "a_b@x", "a%2Fb@x", "a b@x", "a+b@x", "A/B@x", "ä@x", "a:b@x"]

    assert len({message_file_name(message_id) for message_id in ids}) == len(ids)


def test_very_long_message_ids_get_short_distinct_file_names() -> None:
    first, second = "x" * 300 + "1@example.test", "x" * 300 + "2@example.test"

    assert len(message_file_name(first)) < 200
    assert message_file_name(first) != message_file_name(second)

"""MaildirSource: a local Maildir behaves like an IMAP folder (stable UIDs, UIDVALIDITY, processed marks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailbot.adapters.maildir import STATE_FILE, MaildirSource
from mailbot.adapters.ports import SourceError

EML = Path(__file__).resolve().parents[1] / "eml"
PLAIN = (EML / "adapters-plain.eml").read_bytes()
LATIN1 = (EML / "adapters-8bit-latin1.eml").read_bytes()


def deliver(maildir: Path, name: str, raw: bytes, *, folder: str = "new") -> Path:
    path = maildir / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def files(maildir: Path, folder: str) -> list[str]:
    return sorted(path.name for path in (maildir / folder).iterdir())


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "Maildir"


def test_messages_get_uids_in_file_name_order_and_are_read_byte_for_byte(maildir: Path) -> None:
    deliver(maildir, "1700000002.M2P1.host", LATIN1)
    deliver(maildir, "1700000001.M1P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [1, 2]
        assert [(message.uid, message.raw) for message in source.fetch([1, 2])] == [(1, PLAIN), (2, LATIN1)]


def test_uids_are_stable_across_runs(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)
    with MaildirSource(maildir) as source:
        first_validity = source.uidvalidity
        assert source.new_uids(0) == [1]
    deliver(maildir, "1700000000.M0P1.host", LATIN1)  # sorts first, but arrived later

    with MaildirSource(maildir) as source:
        assert source.uidvalidity == first_validity
        assert source.new_uids(0) == [1, 2]
        assert [message.raw for message in source.fetch([2])] == [LATIN1]


def test_mail_arriving_while_open_is_found_by_the_next_search(maildir: Path) -> None:
    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == []
        deliver(maildir, "1700000001.M1P1.host", PLAIN)
        assert source.new_uids(0) == [1]


def test_messages_already_in_cur_count_too(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host:2,S", PLAIN, folder="cur")

    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [1]


def test_new_uids_are_only_those_above_the_cursor(maildir: Path) -> None:
    for n in range(4):
        deliver(maildir, f"170000000{n}.M{n}P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        assert source.new_uids(2) == [3, 4]


def test_fetching_does_not_touch_the_files(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        list(source.fetch([1]))

    assert files(maildir, "new") == ["1700000001.M1P1.host"]


def test_acknowledge_moves_to_cur_with_seen_and_the_processed_flag(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)
    deliver(maildir, "1700000002.M2P1.host:2,FR", LATIN1, folder="cur")
    deliver(maildir, "1700000003.M3P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        source.acknowledge([1, 2])
        assert source.new_uids(0) == [3]

    assert files(maildir, "new") == ["1700000003.M3P1.host"]
    assert files(maildir, "cur") == ["1700000001.M1P1.host:2,Sa", "1700000002.M2P1.host:2,FRSa"]


def test_acknowledged_messages_stay_processed_in_the_next_run(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)
    deliver(maildir, "1700000002.M2P1.host", PLAIN)
    with MaildirSource(maildir) as source:
        source.acknowledge([1])

    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [2]
        assert [message.raw for message in source.fetch([1])] == [PLAIN]  # still readable, never deleted


def test_a_message_a_mail_client_moved_to_cur_is_still_fetched_and_acknowledged(maildir: Path) -> None:
    original = deliver(maildir, "1700000001.M1P1.host", PLAIN)
    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [1]
        original.rename(maildir / "cur" / "1700000001.M1P1.host:2,S")  # a MUA read it meanwhile

        assert [message.raw for message in source.fetch([1])] == [PLAIN]
        source.acknowledge([1])

    assert files(maildir, "cur") == ["1700000001.M1P1.host:2,Sa"]


def test_a_deleted_message_is_skipped_and_its_uid_never_reused(maildir: Path) -> None:
    gone = deliver(maildir, "1700000001.M1P1.host", PLAIN)
    deliver(maildir, "1700000002.M2P1.host", PLAIN)
    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [1, 2]
        gone.unlink()
        assert [message.uid for message in source.fetch([1, 2])] == [2]
        source.acknowledge([1])  # nothing to do, no error

    deliver(maildir, "1700000000.M0P1.host", LATIN1)
    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [2, 3]


def test_dot_files_are_not_messages(maildir: Path) -> None:
    deliver(maildir, ".DS_Store", b"junk")
    deliver(maildir, "1700000001.M1P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == [1]


def test_a_missing_maildir_is_created(maildir: Path) -> None:
    with MaildirSource(maildir) as source:
        assert source.new_uids(0) == []

    assert {path.name for path in maildir.iterdir()} >= {"new", "cur", "tmp", STATE_FILE}


def test_the_state_file_is_replaced_whole(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)

    with MaildirSource(maildir) as source:
        validity = source.uidvalidity

    state = json.loads((maildir / STATE_FILE).read_text())
    assert state == {"uidvalidity": validity, "next_uid": 2, "uids": {"1700000001.M1P1.host": 1}}
    assert not [path for path in maildir.iterdir() if ".tmp-" in path.name]


def test_a_lost_state_file_means_a_new_uidvalidity(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)
    with MaildirSource(maildir):
        pass
    state = json.loads((maildir / STATE_FILE).read_text())
    (maildir / STATE_FILE).write_text(json.dumps({**state, "uidvalidity": 1000}))
    with MaildirSource(maildir) as source:
        assert source.uidvalidity == 1000

    (maildir / STATE_FILE).unlink()

    with MaildirSource(maildir) as source:
        assert source.uidvalidity > 1000
        assert source.new_uids(0) == [1]


def test_an_unreadable_state_file_means_a_new_and_larger_uidvalidity(maildir: Path) -> None:
    deliver(maildir, "1700000001.M1P1.host", PLAIN)
    far_future = 2_000_000_000
    (maildir / STATE_FILE).write_text(json.dumps({"uidvalidity": far_future, "next_uid": "garbage"}))

    with MaildirSource(maildir) as source:
        assert source.uidvalidity == far_future + 1
        assert source.new_uids(0) == [1]


def test_only_one_process_may_open_a_maildir(maildir: Path) -> None:
    with MaildirSource(maildir), pytest.raises(SourceError, match="in use by another mailbot process"):
        MaildirSource(maildir).__enter__()

    with MaildirSource(maildir) as source:  # released after the first one closed
        assert source.new_uids(0) == []


def test_using_the_source_outside_a_with_block_is_a_programming_error(maildir: Path) -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        MaildirSource(maildir).new_uids(0)

"""Local folders instead of mail servers: a Maildir as MailSource, and a directory of sent copies.

This is what mailbot runs on when no IMAP server is configured (demos, tests, air-gapped trials).

A Maildir has no UIDs, so they are kept in `.mailbot-uids.json` inside the Maildir: its UIDVALIDITY,
the next UID, and a map from each message's unique file name (the part before `:2,`) to its UID.
New files in `new/` and `cur/` get UIDs in file-name order, which for Maildir names (they start with
the delivery time) is arrival order. UIDs are never reused; entries of files that disappeared are
dropped. If the state file is lost or unreadable a new UIDVALIDITY is chosen, exactly as an IMAP
server signals a rebuilt mailbox, and the services then recognise already-seen mail by content hash.

Acknowledged messages are moved to `cur/` with the standard flag `S` (seen) plus the lowercase flag
`a` ("processed by mailbot"). Maildir reserves lowercase letters for keywords; Dovecot maps them
to IMAP keywords through its `dovecot-keywords` file, so if Dovecot also serves this Maildir the
message shows the keyword listed there under index 0. `new_uids` skips every message carrying `a`.

One process at a time: the source holds an exclusive lock (`.mailbot-uids.lock`) while open.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar
from urllib.parse import quote

from mailbot.adapters.ports import HEADER_LIMIT, FetchedMessage, SourceError

log = logging.getLogger(__name__)

STATE_FILE = ".mailbot-uids.json"
LOCK_FILE = ".mailbot-uids.lock"
PROCESSED_FLAG = "a"
SEEN_FLAG = "S"
_INFO = ":2,"
_T = TypeVar("_T")


def bare_message_id(value: str) -> str:
    """`<abc@example.test>` and `abc@example.test` name the same message."""
    return value.strip().removeprefix("<").removesuffix(">").strip()


def message_file_name(message_id: str, suffix: str = ".eml") -> str:
    """A file name that is safe anywhere and maps distinct Message-IDs to distinct names.

    Everything outside letters, digits and `@+=-_.` is percent-encoded (so `%` itself too), a leading
    dot is encoded so the file is never hidden, and very long IDs are cut and made unique by a hash.
    """
    bare = bare_message_id(message_id)
    if not bare:
        raise ValueError("a Message-ID is needed to name the file")
    name = quote(bare, safe="@+=-_.")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > 180:
        name = f"{name[:150]}-{hashlib.sha256(bare.encode()).hexdigest()[:20]}"
    return name + suffix


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Readers see the old file or the new one, never half of one, even after a crash.

    `durable=False` skips the fsync: the file still survives the death of the process (it is in
    the page cache), only not a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Entry:
    directory: str  # "new" or "cur"
    name: str

    @property
    def stem(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def flags(self) -> str:
        _, sep, flags = self.name.partition(_INFO)
        return flags if sep else ""


class MaildirSource:
    """A Maildir folder seen as UIDVALIDITY + ascending UIDs; open it with `with`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock: IO[bytes] | None = None
        self._uidvalidity = 0
        self._next_uid = 1
        self._uids: dict[str, int] = {}  # file stem -> UID
        self._entries: dict[int, _Entry] = {}  # UID -> where the file is right now

    def __enter__(self) -> Self:
        try:
            for sub in ("new", "cur", "tmp"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            lock = (self.path / LOCK_FILE).open("ab")
        except OSError as exc:
            raise SourceError(f"maildir {self.path} cannot be opened: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock.close()
            raise SourceError(f"maildir {self.path} is in use by another mailbot process") from exc
        self._lock = lock
        try:
            self._load_state()
            self._scan()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing releases the flock

    def _require_open(self) -> None:
        if self._lock is None:
            raise RuntimeError("the maildir is not open: use MaildirSource as a context manager")

    # -- state

    @property
    def _state_path(self) -> Path:
        return self.path / STATE_FILE

    def _load_state(self) -> None:
        try:
            state = json.loads(self._state_path.read_bytes())
            self._uidvalidity = int(state["uidvalidity"])
            self._next_uid = int(state["next_uid"])
            self._uids = {str(stem): int(uid) for stem, uid in state["uids"].items()}
            if self._uidvalidity <= 0 or any(uid >= self._next_uid for uid in self._uids.values()):
                raise ValueError("inconsistent UIDs")
        except FileNotFoundError:
            self._reset(reason=None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._reset(reason=f"{self._state_path} is unreadable ({exc})")

    def _reset(self, reason: str | None) -> None:
        previous = self._uidvalidity
        self._uidvalidity = max(int(time.time()), previous + 1)
        self._next_uid = 1
        self._uids = {}
        if reason:
            log.warning("maildir %s: %s; new UIDVALIDITY %s", self.path, reason, self._uidvalidity)
        self._save_state()

    def _save_state(self) -> None:
        state = {"uidvalidity": self._uidvalidity, "next_uid": self._next_uid, "uids": self._uids}
        try:
            write_atomically(self._state_path, json.dumps(state, separators=(",", ":")).encode())
        except OSError as exc:
            why = exc.strerror or exc
            raise SourceError(f"maildir {self.path}: cannot write {STATE_FILE}: {why}") from exc

    def _scan(self) -> None:
        """Find every message file, give new ones UIDs, forget vanished ones; save if anything changed."""
        found: dict[str, _Entry] = {}
        try:
            for sub in ("new", "cur"):  # cur/ second: a stem in both places counts as its cur/ copy
                with os.scandir(self.path / sub) as listing:
                    for item in listing:
                        if not item.name.startswith(".") and item.is_file():
                            entry = _Entry(sub, item.name)
                            found[entry.stem] = entry
        except OSError as exc:
            raise SourceError(f"maildir {self.path} cannot be read: {exc.strerror or exc}") from exc
        changed = False
        for stem in [stem for stem in self._uids if stem not in found]:
            del self._uids[stem]
            changed = True
        for stem in sorted(stem for stem in found if stem not in self._uids):
            self._uids[stem] = self._next_uid
            self._next_uid += 1
            changed = True
        if changed:
            self._save_state()
        self._entries = {self._uids[stem]: entry for stem, entry in found.items()}

    # -- MailSource

    @property
    def uidvalidity(self) -> int:
        self._require_open()
        return self._uidvalidity

    def new_uids(self, after_uid: int) -> list[int]:
        self._require_open()
        self._scan()
        return sorted(
            uid
            for uid, entry in self._entries.items()
            if uid > after_uid and PROCESSED_FLAG not in entry.flags
        )

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """The file sizes, from stat: a large message is measured without being read."""
        self._require_open()
        found: dict[int, int] = {}
        for uid in dict.fromkeys(uids):
            size = self._read(uid, _stat_size)
            if size is not None:
                found[uid] = size
        return found

    def fetch(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        self._require_open()
        for uid in dict.fromkeys(uids):
            raw = self._read(uid, Path.read_bytes)
            if raw is not None:
                yield FetchedMessage(uid=uid, raw=raw, size=len(raw))

    def fetch_headers(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        self._require_open()
        for uid in dict.fromkeys(uids):
            found = self._read(uid, _header_block)
            if found is not None:
                raw, size = found
                yield FetchedMessage(uid=uid, raw=raw, size=size, headers_only=True)

    def _read(self, uid: int, how: Callable[[Path], _T]) -> _T | None:
        for attempt in (1, 2):
            entry = self._entries.get(uid)
            if entry is None:
                return None
            try:
                return how(self.path / entry.directory / entry.name)
            except FileNotFoundError:
                if attempt == 1:  # a mail client renamed it (new/ -> cur/, flags changed): look again
                    self._scan()
            except OSError as exc:
                why = exc.strerror or exc
                raise SourceError(f"maildir {self.path}: cannot read {entry.name}: {why}") from exc
        log.info("maildir %s: UID %s vanished before it could be read", self.path, uid)
        return None

    def acknowledge(self, uids: Sequence[int]) -> None:
        self._require_open()
        for uid in dict.fromkeys(uids):
            self._mark_processed(uid)

    def _mark_processed(self, uid: int) -> None:
        for attempt in (1, 2):
            entry = self._entries.get(uid)
            if entry is None:
                return
            flags = "".join(sorted(set(entry.flags) | {SEEN_FLAG, PROCESSED_FLAG}))
            target = _Entry("cur", f"{entry.stem}{_INFO}{flags}")
            if target == entry:
                return
            try:
                (self.path / entry.directory / entry.name).rename(self.path / target.directory / target.name)
            except FileNotFoundError:
                if attempt == 1:
                    self._scan()
                    continue
                log.info("maildir %s: UID %s vanished before it could be acknowledged", self.path, uid)
                return
            except OSError as exc:
                raise SourceError(
                    f"maildir {self.path}: cannot mark {entry.name} processed: {exc.strerror or exc}"
                ) from exc
            self._entries[uid] = target
            return


def _stat_size(path: Path) -> int:
    return path.stat().st_size


def _header_block(path: Path) -> tuple[bytes, int]:
    """The header block (up to and including the blank line, at most HEADER_LIMIT bytes) and the file size."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(HEADER_LIMIT)
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    if not ends:
        return head, size
    end = min(ends)
    return head[: end + (4 if head.startswith(b"\r\n\r\n", end) else 2)], size


class FolderSentCopies:
    """Sent copies as `<Message-ID>.eml` files in one directory (see `message_file_name`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def contains(self, message_id: str) -> bool:
        return (self.path / message_file_name(message_id)).is_file()

    def put(self, message_id: str, raw: bytes) -> None:
        # No fsync: a copy only has to outlive the process between "the server accepted it" and
        # "the row says sent". After a power cut the database (WAL, synchronous=NORMAL) may lose
        # its last commits too; a copy lost with them leaves its row `uncertain`, never resent.
        write_atomically(self.path / message_file_name(message_id), raw, durable=False)

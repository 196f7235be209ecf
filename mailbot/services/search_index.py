"""The console's full-text index of the mail on cases, filled from the ledger after the fact.

The intake stays as fast as it was: the console (or `mailbot cases reindex`) reads routed mail that
is not indexed yet, in batches, and stores what staff search for — subject, sender name, the new
text, forwarded text and attachment names. The database's own full-text engine does the rest.
The rule set's subject prefixes are needed to tell a forward ("Fwd:", "TR:", "转发:") from a reply:
only then is the forwarded mail's text indexed as forwarded content, not dropped as quoted history.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy.engine import Engine

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.parse import parse
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.store import casework_repo as repo
from mailbot.store.db import session_scope

log = logging.getLogger("mailbot.search")
BATCH = 200
MAX_TEXT = 20_000  # characters of one mail kept for search; a huge mail is found by its beginning


def subject_prefixes(rules_dir: Path) -> SubjectPrefixes:
    """The reply and forward prefixes of the rule set in `rules_dir`, for indexing."""
    return load_reading_config(rules_dir).subjects


def _text_of(raw: bytes, subjects: SubjectPrefixes) -> str:
    mail = parse(raw, subjects=subjects)
    parts = [mail.subject, mail.from_name, mail.new_text or mail.text, mail.forwarded_text]
    parts.extend(a.filename or "" for a in mail.attachments)
    return "\n".join(p for p in parts if p)[:MAX_TEXT]


def index_pending(engine: Engine, limit: int = BATCH, subjects: SubjectPrefixes = NO_PREFIXES) -> int:
    """Index up to `limit` routed mails not indexed yet; how many were indexed (0: caught up)."""
    with session_scope(engine) as session:
        mails = repo.unindexed_mail(session, limit)
        repo.add_mail_texts(
            session,
            [
                {"mail_id": m.id, "case_id": m.case_id, "body": _text_of(m.raw, subjects)}
                for m in mails
                if m.id is not None and m.case_id is not None
            ],
        )
        return len(mails)


def index_all(
    engine: Engine, stop: threading.Event | None = None, subjects: SubjectPrefixes = NO_PREFIXES
) -> int:
    """Index everything pending, batch by batch (each its own short transaction)."""
    total = 0
    while stop is None or not stop.is_set():
        done = index_pending(engine, subjects=subjects)
        total += done
        if done < BATCH:
            break
    return total


def keep_indexing(
    engine: Engine,
    stop: threading.Event,
    every_seconds: float = 30.0,
    subjects: SubjectPrefixes = NO_PREFIXES,
) -> None:
    """Run in a thread beside the console: catch up, then look for new mail every `every_seconds`."""
    while not stop.is_set():
        try:
            index_all(engine, stop, subjects)
        except Exception:  # the index is a convenience; the console must keep serving without it
            log.exception("indexing mail for search failed; retrying in %.0f s", every_seconds)
        stop.wait(every_seconds)

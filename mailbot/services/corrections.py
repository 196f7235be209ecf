"""`mailbot corrections export DIR`: the mail staff corrected, as a labelled set `mailbot eval` reads.

Each corrected message is written as `<mail id>.eml` (its raw bytes, exactly as fetched) with one
line in `labels.jsonl` in the buyer-samples schema: the intent staff gave (or mailbot's, when only
the category was corrected), whether it should be answered, the language and the order numbers
mailbot found. Supervisors replay rule changes against the mistakes staff actually corrected. The
console offers the same files as one zip to download (`export_zip`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.evaluation import NO_REPLY_INTENTS
from mailbot.core.types import Intent
from mailbot.store import casework_repo as repo

LABELS = "labels.jsonl"


class ExportError(Exception):
    """The export folder cannot be written; the message names it."""


@dataclass(frozen=True)
class CorrectionView:
    case_ref: str
    mail_id: int | None
    field: str
    mailbot_said: str
    staff_said: str
    by: str
    at: str


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    messages: int
    corrections: int


def list_corrections(engine: Engine) -> tuple[CorrectionView, ...]:
    with Session(engine) as session:
        return tuple(
            CorrectionView(
                case_ref=case.ref,
                mail_id=c.mail_id,
                field=c.field,
                mailbot_said=c.mailbot_said,
                staff_said=c.staff_said,
                by=c.author,
                at=c.created_at.isoformat(timespec="seconds"),
            )
            for c, case in repo.corrections(session)
        )


def _label(file: str, mailbox: str, decision: dict[str, Any], staff: dict[str, str]) -> dict[str, Any]:
    intent = staff.get("intent") or str(decision.get("intent") or Intent.GENERAL_QUESTION.value)
    orders = [str(o.get("number")) for o in decision.get("orders", []) if isinstance(o, dict)]
    return {
        "file": file,
        "mailbox": mailbox,
        "order_numbers": orders,
        "intent": intent,
        "should_reply": Intent(intent) not in NO_REPLY_INTENTS,
        "language": str(decision.get("language") or "en"),
        "category": staff.get("category") or str(decision.get("category") or ""),
        "mailbot_said": {k: str(decision.get(k) or "") for k in ("intent", "category")},
        "corrected": sorted(staff),
        "notes": "exported from staff corrections",
    }


def _export(engine: Engine, put: Callable[[str, bytes], None]) -> tuple[int, int]:
    """Hand each corrected message and then labels.jsonl to `put`; (messages, corrections).

    The one implementation behind the folder export (CLI) and the zip download (console). Messages
    are read one at a time, so a large export never holds every raw mail in memory at once.
    """
    count = 0
    lines: list[str] = []
    with Session(engine) as session:
        by_mail: dict[int, dict[str, str]] = {}
        for correction, _case in repo.corrections(session):
            if correction.mail_id is None:
                continue
            count += 1
            by_mail.setdefault(correction.mail_id, {})[correction.field] = correction.staff_said
        for mail_id, staff in sorted(by_mail.items()):
            mail = repo.mail_by_id(session, mail_id)
            if mail is None:
                continue
            name = f"{mail_id}.eml"
            put(name, mail.raw)
            label = _label(name, mail.mailbox, dict(mail.decision), staff)
            lines.append(json.dumps(label, ensure_ascii=False))
    put(LABELS, "".join(line + "\n" for line in lines).encode("utf-8"))
    return len(lines), count


def export_corrections(engine: Engine, folder: Path) -> ExportReport:
    """Write every corrected message once, with the latest correction of each field as its label."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the folder: {exc.strerror}") from None
    if any(folder.glob("*.eml")) or (folder / LABELS).exists():
        raise ExportError(f"{folder}: already holds an export; give an empty or new folder")

    def put(name: str, data: bytes) -> None:
        try:
            (folder / name).write_bytes(data)
        except OSError as exc:
            raise ExportError(f"{folder / name}: cannot write: {exc.strerror}") from None

    messages, count = _export(engine, put)
    return ExportReport(folder=folder, messages=messages, corrections=count)


def export_zip(engine: Engine, target: BinaryIO) -> tuple[int, int]:
    """The same export as one zip written to `target` (the console's download); (messages, corrections).

    Unzipped into a folder, it is exactly what `export_corrections` writes there, so `mailbot eval`
    reads it as it is.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        return _export(engine, archive.writestr)


def export_filename(now: datetime) -> str:
    return f"mailbot-corrections-{now:%Y-%m-%d-%H%M}.zip"

"""Logging set-up: one stream for mailbot and the libraries, with secrets kept out of it.

imapclient logs protocol lines at DEBUG; a LOGIN or AUTHENTICATE line would carry a password, so a
filter masks them whatever the level, and no mailbot code ever formats a secret into a message.
"""

from __future__ import annotations

import json
import logging
import re
import sys

# Protocol verbs are upper case on the wire; "login failed for …" in prose must stay readable.
_SECRET_LINE = re.compile(r"(\bLOGIN\s+\S+\s+|\bAUTHENTICATE\s+\S+\s+|\bAUTH\s+\S+\s+|(?i:password)=)\S+")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_LINE.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "imapclient", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

"""What the command line needs from the store and the rule files, offered as services.

The entry points import services only (an import-linter contract): opening the database, checking
and upgrading its schema, and loading the supervisors' files go through here, so a change in the
store or the adapters never reaches into `mailbot.cli`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import load_ruleset
from mailbot.adapters.template_files import TemplateFiles, read_template_files
from mailbot.adapters.templates import TemplateStore
from mailbot.store import db

__all__ = [
    "TemplateFiles",
    "load_reading_config",
    "load_ruleset",
    "make_engine",
    "read_template_files",
    "schema_problem",
    "template_names",
    "upgrade_schema",
]


def make_engine(url: str) -> Engine:
    return db.make_engine(url)


def schema_problem(url: str) -> str | None:
    """One line saying why the database cannot serve staff commands yet (None: it can)."""
    return db.schema_problem(url)


def upgrade_schema(url: str) -> None:
    db.upgrade(url)


def template_names(templates_dir: Path) -> frozenset[str]:
    """The reply templates' names under `templates_dir`, for checking the rules' references."""
    return TemplateStore(templates_dir).names()

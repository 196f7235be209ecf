"""Rule statistics: which rules decided (and matched) the stored mail of the last day and week, and which
mail no rule decided."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.adapters.rulefiles import load_ruleset
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.services.rules_admin import RuleCount, RuleStats, rule_stats

from .installation import (
    BOUNCE,
    DISPUTE,
    DISPUTE_2,
    NO_ORDER_INSPECTION,
    OOO_ON_CASE,
    SAME_ORDER,
    STATUS_ES,
    Installation,
)

STATUS_RULE = '[[rule]]\nname = "status-inquiry"\n'


def status_inquiry_switched_off(text: str) -> str:
    """Live rules in which status questions reach no rule: they end as unrouted mail."""
    assert STATUS_RULE in text
    return text.replace(STATUS_RULE, STATUS_RULE + "enabled = false\n")


@pytest.fixture
def stored(make_installation: Callable[..., Installation]) -> Installation:
    """Both rounds of mail; the inspection mail arrived three days ago, the bounce ten days ago."""
    installation = make_installation(live_edit=status_inquiry_switched_off)
    installation.first_round()
    installation.second_round()
    now = datetime.now(UTC)
    installation.set_fetched_at(
        [NO_ORDER_INSPECTION, DISPUTE, DISPUTE_2, STATUS_ES, OOO_ON_CASE], now - timedelta(days=3)
    )
    installation.set_fetched_at([BOUNCE], now - timedelta(days=10))
    return installation


def stats_of(stored: Installation, **kwargs: object) -> RuleStats:
    ruleset = kwargs.pop("ruleset", None) or load_ruleset(stored.rules_dir)
    return rule_stats(stored.engine, ruleset, now=datetime.now(UTC), **kwargs)  # type: ignore[arg-type]


def counts(stats: RuleStats) -> dict[str, tuple[int, int, int, int]]:
    """rule -> (decided in 24h, decided in 7d, matched in 24h, matched in 7d), for rules with any count."""
    return {
        c.rule: (c.decided_day, c.decided_week, c.matched_day, c.matched_week)
        for c in stats.rules
        if c.decided_week or c.matched_week
    }


def test_each_rule_counts_the_mail_it_decided_and_matched_in_the_last_day_and_week(
    stored: Installation,
) -> None:
    stats = stats_of(stored)
    assert counts(stats) == {
        "machines-get-no-reply": (0, 0, 2, 3),  # continues: matches, never decides
        "automatic-reply-on-a-case": (0, 1, 0, 1),
        "automatic-reply-elsewhere": (1, 1, 1, 1),  # the bounce of ten days ago is not counted
        "spam": (1, 1, 1, 1),  # the duplicate newsletter never reached the rules
        "inspection-team": (0, 0, 0, 4),
        "production-monitoring-team": (0, 0, 6, 6),
        "follow-up": (1, 1, 1, 1),
        "ask-for-the-order-number": (0, 0, 1, 2),
        "cancellation": (4, 5, 4, 5),
        "report-dispute": (0, 2, 0, 2),
        DEFAULT_RULE: (1, 2, 1, 2),
    }
    assert (stats.decided_day, stats.decided_week, stats.skipped_week) == (8, 13, 1)


def test_every_rule_in_charge_is_listed_in_file_order_even_without_a_hit(stored: Installation) -> None:
    ruleset = load_ruleset(stored.rules_dir)
    stats = stats_of(stored)
    assert [c.rule for c in stats.rules] == [*(r.name for r in ruleset.rules), DEFAULT_RULE]
    assert RuleCount("status-inquiry", 0, 0, 0, 0, in_rules=True) in stats.rules


def test_the_mail_no_rule_decided_is_listed_newest_first(stored: Installation) -> None:
    stats = stats_of(stored)
    ids = stored.mail_ids()
    assert stats.unmatched_week == 2
    assert [(m.mail_id, m.mailbox, m.sender, m.subject, m.category) for m in stats.unmatched] == [
        (ids[SAME_ORDER], "pm", "maria.lopez@andes-trading.example", "Order 162534987612345", "unrouted"),
        (
            ids[STATUS_ES],
            "inspection",
            "jose.ramirez@importadora-sol.example",
            "Informe de inspección pendiente",
            "unrouted",
        ),
    ]
    assert stats.unmatched[1].received < stats.unmatched[0].received


def test_the_list_of_unmatched_mail_is_cut_at_the_limit_but_all_are_counted(stored: Installation) -> None:
    stats = stats_of(stored, limit=1)
    assert len(stats.unmatched) == 1 and stats.unmatched_week == 2


def test_rules_that_are_gone_from_the_rules_in_charge_are_listed_after_them(stored: Installation) -> None:
    renamed = stored.draft(lambda text: text.replace('name = "spam"', 'name = "junk"'), name="renamed")
    stats = stats_of(stored, ruleset=load_ruleset(renamed))
    assert stats.rules[-1] == RuleCount("spam", 1, 1, 1, 1, in_rules=False)
    assert RuleCount("junk", 0, 0, 0, 0, in_rules=True) in stats.rules


def test_decisions_are_counted_by_the_rules_version_that_made_them(stored: Installation) -> None:
    stats = stats_of(stored)
    assert stats.versions == ((stored.runtime.rules.current().version, 13),)


def test_the_stats_command_prints_the_table_and_the_unmatched_mail(stored: Installation) -> None:
    result = stored.mailbot("rules", "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    version = stored.runtime.rules.current().short_version  # templates included
    assert (
        lines[0]
        == f"Rules in charge: version {version}. Decisions: 8 in the last 24 hours, 13 in the last 7 days."
    )
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line and not line.startswith(" ")}
    assert rows["cancellation"] == ["4", "5", "4", "5"]
    assert rows["production-monitoring-team"] == ["-", "-", "6", "6"]
    assert rows["status-inquiry"] == ["0", "0", "0", "0", "(switched", "off)"]
    assert re.search(r"^\(no rule decided\) +1 +2 +1 +2$", result.output, re.MULTILINE)
    ids = stored.mail_ids()
    assert "Mail no rule decided in the last 7 days: 2" in lines
    unmatched = lines[lines.index("Mail no rule decided in the last 7 days: 2") + 1 :]
    assert unmatched[0].startswith(f"  #{ids[SAME_ORDER]}  ")
    assert unmatched[0].endswith("  pm  maria.lopez@andes-trading.example  'Order 162534987612345'")
    assert unmatched[1].startswith(f"  #{ids[STATUS_ES]}  ")
    assert "Mail of the last 7 days the rules never saw (duplicates, processing failures): 1" in lines


def test_the_stats_command_prints_json_for_programs(stored: Installation) -> None:
    result = stored.mailbot("rules", "stats", "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decided"] == {"day": 8, "week": 13}
    cancellation = next(r for r in data["rules"] if r["rule"] == "cancellation")
    assert cancellation == {
        "rule": "cancellation",
        "decided": {"day": 4, "week": 5},
        "matched": {"day": 4, "week": 5},
        "in_rules": True,
    }
    assert data["unmatched_week"] == 2 and len(data["unmatched"]) == 1
    assert data["unmatched"][0]["from"] == "maria.lopez@andes-trading.example"


def test_an_empty_store_has_no_statistics_yet(make_installation: Callable[..., Installation]) -> None:
    installation = make_installation()
    stats = stats_of(installation)
    assert (stats.decided_week, stats.unmatched, stats.versions) == (0, (), ())
    assert all(c.decided_week == c.matched_week == 0 for c in stats.rules)

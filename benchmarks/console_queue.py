"""Server time of the staff console on a large store: the queue, page 200, an order search, a case view.

    PYTHONPATH=. .venv/bin/python benchmarks/console_queue.py [--cases 100000] [--messages 3] [--runs 50]

Fills a throwaway PostgreSQL database (MAILBOT_TEST_POSTGRES's server, default 127.0.0.1:5432)
with N cases and N x M messages (each a small real mail in the ledger), then times requests through
the real ASGI app in process (routing, session check, services, queries, Jinja2 rendering; no network)
and prints p50 / p95 per request kind. Nothing is asserted: the figures go in the README.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from mailbot.services import accounts  # noqa: E402
from mailbot.services.due_times import fill_due_times  # noqa: E402
from mailbot.settings_due import DueSettings  # noqa: E402
from mailbot.store.db import make_engine, upgrade  # noqa: E402
from mailbot.store.tables import Case, CaseEvent, CaseMessage, CaseOrder, MailRecord, MailText  # noqa: E402
from mailbot.web.app import build_app  # noqa: E402

ADMIN = os.environ.get("MAILBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
STATUSES = ["new", "open", "open", "waiting", "resolved", "closed", "closed", "closed"]
CATEGORIES = ["cancellation", "report_dispute", "status_inquiry", "add_service", "general_question"]
MAIL = (
    "From: Buyer {n} <buyer{b}@example.com>\r\nTo: ta-pm@support.example.test\r\n"
    "Subject: {subject}\r\nMessage-ID: <m{n}@example.com>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n"
    "please cancel the service for our order {order} of {product}.\r\n"
    "The goods have shipped.\r\n\r\nThanks\r\n\r\n"
    "On Fri, 27 Nov 2026, TA <ta-pm@support.example.test> wrote:\r\n"
    "> We received your request about order {order}.\r\n"
)


def fill(url: str, n_cases: int, per_case: int) -> list[tuple[str, str]]:
    """Insert the cases and messages in batches; returns (ref, order number) of every case."""
    engine = make_engine(url)
    rng = random.Random(8)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    refs: list[tuple[str, str]] = []
    batch = 2000
    mail_id = 0
    with engine.begin() as conn:
        for first in range(0, n_cases, batch):
            cases, orders, mails, messages, events, texts = [], [], [], [], [], []
            for i in range(first, min(first + batch, n_cases)):
                ref = f"B{i:05d}"[:6] if i < 100000 else f"C{i % 100000:05d}"
                order = f"{3900000000000000 + i * 7919}"
                created = start + timedelta(minutes=i * 5)
                buyer = f"buyer{i % 40000}@example.com"
                subject = f"Cancel order {order} please"
                cases.append(
                    {
                        "id": i + 1,
                        "ref": ref,
                        "category": rng.choice(CATEGORIES),
                        "status": rng.choice(STATUSES),
                        "priority": "normal",
                        "queue": None,
                        "assignee": rng.choice([None, None, "ana@support.example", "ben@support.example"]),
                        "tags": [],
                        "orders": [order],
                        "buyer": buyer,
                        "buyer_name": f"Buyer {i}",
                        "mailbox": rng.choice(["pm", "inspection"]),
                        "language": rng.choice(["en", "en", "es", "zh", "de"]),
                        "subject": subject,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                orders.append({"case_id": i + 1, "number": order})
                refs.append((ref, order))
                for k in range(per_case):
                    mail_id += 1
                    product = f"widget{i % 997}"
                    raw = MAIL.format(
                        n=mail_id, b=i % 40000, subject=subject, order=order, product=product
                    ).encode()
                    texts.append(
                        {
                            "mail_id": mail_id,
                            "case_id": i + 1,
                            "body": f"{subject}\nBuyer {i}\nplease cancel the service for our order {order} "
                            f"of {product}. The goods have shipped.",
                        }
                    )
                    mails.append(
                        {
                            "id": mail_id,
                            "mailbox": "pm",
                            "uidvalidity": 1,
                            "uid": mail_id,
                            "sha256": secrets.token_hex(32),
                            "message_id": f"m{mail_id}@example.com",
                            "raw": raw,
                            "size": len(raw),
                            "subject": subject,
                            "from_addr": buyer,
                            "fetched_at": created + timedelta(hours=k),
                            "outcome": "routed",
                            "reason": "",
                            "case_id": i + 1,
                            "ruleset_version": "bench",
                            "decision": {
                                "category": "cancellation",
                                "intent": "cancellation",
                                "language": "en",
                            },
                            "acked_at": None,
                        }
                    )
                    messages.append(
                        {
                            "case_id": i + 1,
                            "direction": "in",
                            "message_id": f"m{mail_id}@example.com",
                            "mail_id": mail_id,
                            "outbox_id": None,
                            "from_addr": buyer,
                            "subject": subject,
                            "created_at": created + timedelta(hours=k),
                        }
                    )
                    events.append(
                        {
                            "case_id": i + 1,
                            "mail_id": mail_id,
                            "kind": "routed",
                            "summary": "routed",
                            "detail": {},
                            "created_at": created + timedelta(hours=k),
                        }
                    )
            conn.execute(insert(Case.__table__), cases)  # type: ignore[attr-defined]
            conn.execute(insert(CaseOrder.__table__), orders)  # type: ignore[attr-defined]
            conn.execute(insert(MailRecord.__table__), mails)  # type: ignore[attr-defined]
            conn.execute(insert(CaseMessage.__table__), messages)  # type: ignore[attr-defined]
            conn.execute(insert(CaseEvent.__table__), events)  # type: ignore[attr-defined]
            conn.execute(insert(MailText.__table__), texts)  # type: ignore[attr-defined]
        conn.execute(text("SELECT setval('case_id_seq', (SELECT max(id) FROM \"case\"))"))
        conn.execute(text("SELECT setval('mail_id_seq', (SELECT max(id) FROM mail))"))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return refs


def timed(client: TestClient, path: str, runs: int, *, warm: bool = True) -> list[float]:
    if warm:
        client.get(path)  # the first request of a page plans its queries
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=3, help="messages per case")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument(
        "--reuse", default=None, help="time an earlier --keep database instead of filling one"
    )
    args = parser.parse_args()
    name = args.reuse or f"mailbot_bench_console_{secrets.token_hex(4)}"
    if not args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    try:
        upgrade(url)
        t0 = time.perf_counter()
        refs = (
            [
                (f"B{i:05d}" if i < 100000 else f"C{i % 100000:05d}", f"{3900000000000000 + i * 7919}")
                for i in range(args.cases)
            ]
            if args.reuse
            else fill(url, args.cases, args.messages)
        )
        print(
            f"filled {args.cases:,} cases, {args.cases * args.messages:,} messages "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        engine = make_engine(url)
        if not args.reuse:
            accounts.add_user(engine, "ana@support.example", "staff", "benchmark password")
        # Due times as `mailbot web` keeps them (its background thread), so no timed page fills them.
        t0 = time.perf_counter()
        filled = fill_due_times(engine, DueSettings(), limit=args.cases)
        print(f"gave {filled:,} new and open cases their due time in {time.perf_counter() - t0:.1f} s")
        results: dict[str, list[float]] = {}
        with TestClient(build_app(engine), base_url="http://127.0.0.1") as client:
            form = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            client.post(
                "/login",
                data={
                    "csrf_token": token.group(1),
                    "email": "ana@support.example",
                    "password": "benchmark password",
                },
            )
            results["queue, filtered (status+mailbox+language)"] = timed(
                client, "/cases?status=open&mailbox=pm&language=en", args.runs
            )
            # page 200: follow the "next" cursor 199 times once, then time that page
            path = "/cases"
            for _ in range(199):
                html = client.get(path).text
                found = re.search(r'href="(/cases\?[^"]*after=[^"]+)"', html)
                assert found, "fewer than 200 pages"
                path = found.group(1).replace("&amp;", "&")
            results["queue, page 200"] = timed(client, path, args.runs)
            results["queue, overdue"] = timed(client, "/cases?due=overdue", args.runs)
            results["queue, due soon"] = timed(client, "/cases?due=soon", args.runs)
            sample = random.Random(3).sample(refs, args.runs)
            times = []
            for _ref, order in sample:
                times.extend(timed(client, f"/cases?q={order}", 1, warm=False))
            results["search by order number"] = times
            times = []
            for k in range(args.runs):
                times.extend(timed(client, f"/cases?q=widget{k * 17 % 997}+shipped", 1, warm=False))
            results["search by words in the mail"] = times
            times = []
            for ref, _order in sample:
                times.extend(timed(client, f"/cases/{ref}", 1, warm=False))
            results["case view"] = times
        engine.dispose()
        print(f"{'request':<44} {'p50 ms':>8} {'p95 ms':>8}   ({args.runs} requests each, in process)")
        for label, values in results.items():
            values.sort()
            p95 = values[min(len(values) - 1, round(0.95 * len(values)) - 1)]
            print(f"{label:<44} {statistics.median(values):8.1f} {p95:8.1f}")
    finally:
        if args.keep or args.reuse:
            print(f"database kept: {name}")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

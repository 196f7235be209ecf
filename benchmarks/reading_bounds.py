"""How long reading and deciding take on hostile mail, and on ordinary mail, per message.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/reading_bounds.py              # every case
    PYTHONPATH=$PWD .venv/bin/python benchmarks/reading_bounds.py line-8000 rules-1000
    PYTHONPATH=/other/checkout .venv/bin/python benchmarks/reading_bounds.py --timeout 30

Reading must be bounded by the size of the mail, not by what the mail says: one line listing
8,000 order numbers, a 1 MB subject, a 1 MB body of digits or of look-alikes (phones, IBANs,
tracking numbers, dates) each go through the whole `read()` pipeline (parse → automation →
orders → language → intent). Deciding must be bounded by the rule set, not by a pattern a
supervisor wrote: 1,000 `subject_matches` rules placed before the shipped ones, once with
ordinary patterns and once with nested quantifiers like `(a+)+$` that backtrack for ever in a
backtracking engine.

Text cases print wall and CPU seconds (on a shared machine the CPU time is the steadier figure).
Every case runs in a child process with a time limit (`--timeout`), so the script also measures an
older checkout (point PYTHONPATH at it) where some cases never finish: they print "stopped".
The corpus cases print the mean `read()` time per mail of the labelled test mail (tests/eml), the
shared real-world corpus and the 2,000-mail synthetic benchmark corpus (`shared/bench/gen_corpus.py`,
seed 42), so a change can be compared before and after. Nothing here is a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if not SHARED.is_dir():  # a worktree beside the main checkout
    SHARED = Path("/work/shared")
MB = 1_000_000
US_ADDRESS = "ta-pm@support.example.test"


def _message(subject: str, body: str, content_type: str = "text/plain") -> bytes:
    head = (
        "From: Buyer <buyer@shop.example>\r\n"
        f"To: {US_ADDRESS}\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <bench@shop.example>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + body).encode("utf-8")


def _numbers(count: int, rng: random.Random) -> list[str]:
    return [str(rng.randrange(10**15, 10**16)) + str(rng.randrange(10)) for _ in range(count)]


def _lookalikes(size: int, rng: random.Random) -> str:
    """Everything an order number is confused with, over and over, with the words that go with it."""
    pieces = [
        lambda: f"Tel: +86 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
        lambda: f"IBAN DE{rng.randrange(10, 99)} 3704 0044 0532 0130 {rng.randrange(10, 99)}",
        lambda: f"UPS 1Z 999 AA1 01 2345 {rng.randrange(1000, 9999)}",
        lambda: f"tracking RR{rng.randrange(100000000, 999999999)}CN",
        lambda: (
            f"order no. {rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}-"
            f"{rng.randrange(1000, 9999)}"
        ),
        lambda: f"VAT {rng.randrange(10**11, 10**12)}",
        lambda: f"PI No. PI-2026-{rng.randrange(10**7, 10**8)}",
        lambda: f"USD {rng.randrange(10**6, 10**9)}.{rng.randrange(10, 99)}",
        lambda: f"IMG_2026031410{rng.randrange(1000, 9999)}.jpg",
        lambda: f"(0755) {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
        lambda: f"订单号{rng.randrange(10**15, 10**16)}",
        lambda: "0086 " + " ".join(str(rng.randrange(1000, 9999)) for _ in range(4)),
        lambda: f"TA{rng.randrange(10**15, 10**16)}",
        lambda: f"boundary=_{rng.randrange(10**15, 10**16)}",
        lambda: f"{rng.randrange(10**15, 10**16)} nolu sipariş",
    ]
    out: list[str] = []
    total = 0
    while total < size:
        piece = rng.choice(pieces)() + rng.choice([" ", " | ", "\n", ", ", "\n\n", "\t"])
        out.append(piece)
        total += len(piece)
    return "".join(out)[:size]


def _text_cases() -> dict[str, Callable[[], bytes]]:
    rng = random.Random(7)
    return {
        "line-8000": lambda: _message(
            "orders to cancel", "Please cancel these orders: " + " ".join(_numbers(8000, rng)) + "\n"
        ),
        "subject-1mb": lambda: _message(
            "cancel order " + " ".join(_numbers(MB // 18, rng))[:MB], "Please see the subject.\n"
        ),
        "body-digits-1mb": lambda: _message("digits", ("1234567890" * (MB // 10)) + "\n"),
        "body-spaced-digits-1mb": lambda: _message("digits", ("1 23 456 7890 " * (MB // 14)) + "\n"),
        "body-lookalikes-1mb": lambda: _message("look-alikes", _lookalikes(MB, rng)),
        "body-lookalike-line-1mb": lambda: _message(
            "look-alikes", _lookalikes(MB, rng).replace("\n", " ").replace("\t", " ")
        ),
        "html-lookalikes-1mb": lambda: _message(
            "look-alikes",
            "<html><body><table>"
            + "".join(
                f"<tr><td>{piece}</td><td><span>{n[:8]}</span><span>{n[8:]}</span></td></tr>"
                for piece, n in zip(
                    _lookalikes(MB // 2, rng).split("\n"), _numbers(MB // 60, rng), strict=False
                )
            )
            + "</table></body></html>",
            "text/html",
        ),
        "body-quoted-1mb": lambda: _message(
            "Re: order",
            "See below.\n\n" + "> On Mon, Buyer wrote:\n> order 1625 3498 7612 3451\n" * (MB // 50),
        ),
        "body-words-1mb": lambda: _message(
            "cancel",
            " ".join(
                rng.choice(["cancel", "report", "wrong", "order", "regards", "-- ", "From:", "x"])
                for _ in range(MB // 6)
            ),
        ),
    }


def _reading_setup() -> tuple[object, object]:
    from mailbot.adapters.lexicons import load_reading_config
    from mailbot.core.types import Identity

    config = load_reading_config(REPO / "rules")
    identity = Identity(addresses=frozenset({US_ADDRESS}), message_id_domain="mailbot.example.test")
    return config, identity


def run_text_case(name: str) -> dict[str, object]:
    from mailbot.core.reading import read

    config, identity = _reading_setup()
    raw = _text_cases()[name]()
    started, cpu = time.perf_counter(), time.process_time()
    reading = read(raw, identity=identity, config=config)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rejected = reading.orders.rejected
    capped = [r.reason for r in rejected if "not read" in r.reason]
    return {
        "case": name,
        "bytes": len(raw),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "orders": len(reading.orders.orders),
        "rejected": len(rejected),
        "note": capped[0] if capped else "",
    }


# -- deciding ---------------------------------------------------------------------------------------


def _extra_rules(kind: str, count: int) -> str:
    rules = []
    for i in range(count):
        # "nested": exponential in a backtracking engine
        pattern = rf"^(urgent|asap)[ -]{i}\b|order\s*#?{i:06d}$" if kind == "plain" else rf"^(a+)+b{i}$"
        rules.append(
            f'[[rule]]\nname = "extra-{i}"\nwhen.subject_matches = {json.dumps(pattern)}\n'
            f'then.category = "extra_{i}"\n'
        )
    return "\n".join(rules)


def _ruleset(kind: str, count: int) -> object:
    from mailbot.core.rules.schema import RuleSource, parse_ruleset

    shipped = (REPO / "rules" / "routing.toml").read_text(encoding="utf-8")
    # [word_lists] must stay above the first [[rule]]; the extra rules go right after it.
    head, first_rule, rest = shipped.partition("[[rule]]")
    text = head + (_extra_rules(kind, count) + "\n\n" if count else "") + first_rule + rest
    return parse_ruleset([RuleSource("routing.toml", text)])


def run_rules_case(name: str) -> dict[str, object]:
    from mailbot.core.decide import decide
    from mailbot.core.reading import read

    config, identity = _reading_setup()
    kind, count = {
        "rules-shipped": ("plain", 0),
        "rules-1000": ("plain", 1000),
        "rules-1000-nested": ("nested", 1000),
    }[name]
    ruleset = _ruleset(kind, count)
    subjects = [
        "Please cancel the inspection for order 1625 3498 7612 345",
        "Re: [Case #K7Q2XZ] the report is wrong",
        "a" * 41,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
        "订单号 1625349876123451 取消验货",
    ]
    readings = [
        read(_message(s, "Hello,\nplease cancel it.\nRegards\n"), identity=identity, config=config)  # type: ignore[arg-type]
        for s in subjects
    ]
    rounds = 200
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        for reading in readings:
            decide(reading, mailbox="pm", ruleset=ruleset, identity=identity)  # type: ignore[arg-type]
    per_mail = (time.perf_counter() - started) / (rounds * len(readings))
    cpu_per_mail = (time.process_time() - cpu) / (rounds * len(readings))
    return {
        "case": name,
        "rules": len(ruleset.rules),  # type: ignore[attr-defined]
        "ms_per_mail": round(per_mail * 1000, 3),
        "cpu_ms_per_mail": round(cpu_per_mail * 1000, 3),
    }


# -- ordinary mail ----------------------------------------------------------------------------------


def _corpus_files(name: str, work: Path) -> list[Path]:
    if name == "corpus-tests":
        return sorted((REPO / "tests" / "eml").rglob("*.eml"))
    if name == "corpus-shared":
        return sorted((SHARED / "corpus").rglob("*.eml"))
    out = work / "bench-corpus-2000-42"
    if not (out / "manifest.jsonl").is_file():
        subprocess.run(
            [
                sys.executable,
                str(SHARED / "bench" / "gen_corpus.py"),
                "--n",
                "2000",
                "--seed",
                "42",
                "--out",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return sorted(out.glob("*.eml"))


def run_corpus_case(name: str, work: Path) -> dict[str, object]:
    from mailbot.core.reading import read

    config, identity = _reading_setup()
    files = _corpus_files(name, work)
    raws = [p.read_bytes() for p in files]
    read(raws[0], identity=identity, config=config)  # type: ignore[arg-type]  # warm caches
    times = []
    cpu = time.process_time()
    for raw in raws:
        started = time.perf_counter()
        read(raw, identity=identity, config=config)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    cpu_mean = (time.process_time() - cpu) / len(raws)
    times.sort()
    return {
        "case": name,
        "mails": len(raws),
        "mean_ms": round(statistics.fmean(times) * 1000, 3),
        "cpu_mean_ms": round(cpu_mean * 1000, 3),
        "median_ms": round(statistics.median(times) * 1000, 3),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 3),
        "max_ms": round(times[-1] * 1000, 3),
    }


CORPUS_CASES = ("corpus-tests", "corpus-shared", "corpus-2000")
RULE_CASES = ("rules-shipped", "rules-1000", "rules-1000-nested")


def all_cases() -> list[str]:
    return [*_text_cases(), *RULE_CASES, *CORPUS_CASES]


def run_one(name: str, work: Path) -> dict[str, object]:
    if name in RULE_CASES:
        return run_rules_case(name)
    if name in CORPUS_CASES:
        return run_corpus_case(name, work)
    return run_text_case(name)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("cases", nargs="*", help=f"cases to run (default: all): {', '.join(all_cases())}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case is stopped")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()), help="where the corpus goes"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one case in this process, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.work)))
        return 0
    chosen = args.cases or all_cases()
    unknown = [c for c in chosen if c not in all_cases()]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; known: {', '.join(all_cases())}")
    for name in chosen:
        command = [sys.executable, __file__, "--one", name, "--work", str(args.work)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
        except subprocess.TimeoutExpired:
            print(f"{name:26} stopped after {args.timeout:g} s")
            continue
        if done.returncode != 0:
            print(f"{name:26} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        shown = "  ".join(f"{k}={v}" for k, v in result.items() if k != "case" and v != "")
        print(f"{name:26} {shown}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

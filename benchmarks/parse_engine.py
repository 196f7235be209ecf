"""parse() and read() time per mail on the 2,000-mail benchmark corpus, for before/after comparisons.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/parse_engine.py
    PYTHONPATH=/an/older/checkout .venv/bin/python benchmarks/parse_engine.py --rounds 5

Each round parses (and reads) every mail once; the figure is the CPU time per mail of the median
round, which on a shared machine is steadier than wall time. The corpus is generated with
`shared/bench/gen_corpus.py` (seed 42) on first use. Run two checkouts alternately and compare;
nothing here is a test, it prints numbers. Also prints how many mails fell back to the stdlib
parser (mail-parser raised) and how many carry a Received chain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if not SHARED.is_dir():  # a worktree beside the main checkout
    SHARED = Path("/work/shared")


def corpus(work: Path) -> list[bytes]:
    out = work / "bench-corpus-2000-42"
    if not (out / "manifest.jsonl").is_file():
        generator = SHARED / "bench" / "gen_corpus.py"
        command = [sys.executable, str(generator), "--n", "2000", "--seed", "42", "--out", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return [p.read_bytes() for p in sorted(out.glob("*.eml"))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the corpus (default 3)")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()), help="where the corpus goes"
    )
    args = parser.parse_args()

    from mailbot.adapters.lexicons import load_reading_config
    from mailbot.core.parse import parse
    from mailbot.core.reading import read
    from mailbot.core.types import Identity

    config = load_reading_config(REPO / "rules")
    identity = Identity(
        addresses=frozenset({"ta-pm@example.test", "ta-inspection@example.test"}),
        message_id_domain="mailbot.example.test",
        case_tag="Case",
    )
    raws = corpus(args.work)
    parse(raws[0])  # warm caches
    parse_rounds, read_rounds = [], []
    for _ in range(args.rounds):
        started = time.process_time()
        mails = [parse(raw) for raw in raws]
        parse_rounds.append((time.process_time() - started) / len(raws))
        started = time.process_time()
        for raw in raws:
            read(raw, identity=identity, config=config)
        read_rounds.append((time.process_time() - started) / len(raws))
    fallbacks = sum(any(d.startswith("mail-parser raised") for d in m.defects) for m in mails)
    chains = sum(bool(getattr(m, "received", ())) for m in mails)
    print(
        json.dumps(
            {
                "code": str(Path(sys.modules["mailbot"].__file__ or "").parent.parent),
                "mails": len(raws),
                "parse_cpu_ms": round(statistics.median(parse_rounds) * 1000, 3),
                "read_cpu_ms": round(statistics.median(read_rounds) * 1000, 3),
                "stdlib_fallbacks": fallbacks,
                "with_received_chain": chains,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What reading attachments costs: per mail on the benchmark corpus, and for hostile PDFs.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/attachment_reading.py

1. read() CPU time per mail on the 2,000-mail benchmark corpus (benchmarks/parse_engine.py makes
   it), with attachment reading on and off, separately for the mails with and without a PDF, .msg,
   text or CSV attachment (the corpus's PDFs are random bytes behind a PDF header).
2. Wall time of the attachment reader on hostile PDFs built here (each under the size limit):
   pages of operators that draw nothing, a decompression bomb, a file without a cross-reference
   table that pypdf must scan, deep nesting; with the shipped limits. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests" / "eml" / "attachments"))

from make_fixtures import pdf, slow_stream  # noqa: E402
from parse_engine import corpus  # noqa: E402

from mailbot.adapters.attachment_text import AttachmentTextReader  # noqa: E402
from mailbot.adapters.lexicons import load_reading_config  # noqa: E402
from mailbot.core.attachments import AttachmentFile, AttachmentLimits, readable  # noqa: E402
from mailbot.core.parse import parse  # noqa: E402
from mailbot.core.reading import ReadingConfig, read  # noqa: E402
from mailbot.core.types import Identity  # noqa: E402

IDENTITY = Identity(addresses=frozenset({"ta-pm@example.test"}), message_id_domain="mailbot.example.test")


def cpu_per_mail(raws: list[bytes], config: ReadingConfig, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for raw in raws:
            read(raw, identity=IDENTITY, config=config)
        times.append((time.process_time() - started) / len(raws))
    return round(statistics.median(times) * 1000, 3)


def hostile() -> dict[str, bytes]:
    rng = random.Random(1)
    no_xref = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /A [1 2 3] >> endobj\n" % i for i in range(140_000))
    return {
        "20 pages x 30k operators drawing nothing": pdf([slow_stream(30_000)] * 20, shared_content=True),
        "20 pages x 33k operators (the parse limit)": pdf([slow_stream(33_000)] * 20, shared_content=True),
        "deflate bomb (50 MB of content)": pdf([b"BT (x) Tj ET" + b" " * 50_000_000]),
        "5 MB without xref, 140k objects, %%EOF": no_xref + b"%%EOF\n",
        "5 MB, 140k objects, a wrong startxref": no_xref + b"startxref\n123\n%%EOF\n",
        "5 MB of noise behind a PDF header": b"%PDF-1.4\n" + rng.randbytes(5_000_000) + b"\n%%EOF\n",
        "200k nested arrays": pdf([b"BT " + b"[" * 200_000 + b" ET"]),
        "2,000 pages": pdf([slow_stream(10)] * 2000, shared_content=True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    config = load_reading_config(REPO / "rules")
    off = dataclasses.replace(config, attachments=None)
    raws = corpus(args.work)
    with_files = [r for r in raws if readable(parse(r).attachments)]
    without = [r for r in raws if not readable(parse(r).attachments)]
    read(with_files[0], identity=IDENTITY, config=config)  # imports pypdf
    result: dict[str, object] = {
        "mails_without_readable_attachments": len(without),
        "read_cpu_ms_without_off": cpu_per_mail(without, off, args.rounds),
        "read_cpu_ms_without_on": cpu_per_mail(without, config, args.rounds),
        "mails_with_readable_attachments": len(with_files),
        "read_cpu_ms_with_off": cpu_per_mail(with_files, off, args.rounds),
        "read_cpu_ms_with_on": cpu_per_mail(with_files, config, args.rounds),
    }
    reader, limits = AttachmentTextReader(), AttachmentLimits()
    worst: dict[str, object] = {}
    for name, data in hostile().items():
        started = time.perf_counter()
        [answer] = reader([AttachmentFile("x.pdf", "pdf", data)], limits)
        seconds = round(time.perf_counter() - started, 2)
        worst[name] = {"bytes": len(data), "seconds": seconds, "answer": str(answer)[:70]}
    result["hostile_pdfs"] = worst
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

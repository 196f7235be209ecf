"""What bounded rendering costs: time per reply for every shipped template, and what the bombs of issue 7
cost (time and peak RSS) now that they are refused.

    python benchmarks/template_render.py [--rounds 20]

Prints numbers; asserts nothing (speed belongs here, not in the tests).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.adapters.templates import TemplateStore, sample_context  # noqa: E402

BOMBS = {
    "nested range(100000) loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
    "{% endfor %}{% endfor %}",
    "'x'|center(10**9)": "{{ 'x'|center(10**9) }}",
    "lipsum(n=10**6)": "{{ lipsum(n=10**6) }}",
    "'%1000000000s' % 'x'": "{{ '%1000000000s' % 'x' }}",
    "string doubled 40 times": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "macro recursion 2**60 calls": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
    "{% endmacro %}{{ f(60) }}",
}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="renders of each template (default 20)")
    args = parser.parse_args()
    live = TemplateStore(ROOT / "templates")
    pinned = TemplateStore.pinned(live.files)  # what the worker renders with
    pairs = sorted((lang, name) for lang in live.languages() for name in live.names())
    for label, store in (("pinned (worker)", pinned), ("live (previews)", live)):
        for lang, name in pairs:  # warm: compile once
            store.render(name, lang, sample_context(language=lang))
        samples = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for lang, name in pairs:
                store.render(name, lang, sample_context(language=lang))
            samples.append((time.perf_counter() - start) / len(pairs))
        median = statistics.median(samples) * 1e6
        print(f"shipped templates, {label}: {len(pairs)} replies, median {median:.0f} µs per render")
    store = pinned
    start = time.perf_counter()
    problems = store.validate()
    print(f"validate() of the shipped set: {time.perf_counter() - start:.2f} s, {len(problems)} problems")
    with tempfile.TemporaryDirectory() as folder:
        bombs = TemplateStore(Path(folder))
        (Path(folder) / "en").mkdir()
        print(f"\n{'bomb':32} {'seconds':>8} {'peak RSS MB':>12}  outcome")
        for label, source in BOMBS.items():
            (Path(folder) / "en" / "bomb.txt.j2").write_text(source + "\n", encoding="utf-8")
            start = time.perf_counter()
            try:
                bombs.render("bomb", "en", sample_context())
                outcome = "rendered"
            except Exception as exc:
                outcome = str(exc).split(": ", 1)[-1][:70]
            print(f"{label:32} {time.perf_counter() - start:8.3f} {rss_mb():12.0f}  {outcome}")


if __name__ == "__main__":
    main()

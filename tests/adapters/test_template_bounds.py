"""Every render is bounded: loops, string sizes, output and time. A template over a bound fails like any
other template error, naming its file (and line), and never allocates the oversized thing first."""

from __future__ import annotations

import gc
import resource
import time
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from mailbot.adapters.template_limits import BUDGET, Budget
from mailbot.adapters.template_sandbox import TemplateLimitError
from mailbot.adapters.templates import (
    RenderLimits,
    TemplateRenderError,
    TemplateStore,
    check_templates,
    sample_context,
)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def render_error(root: Path, source: str, **limits: float) -> TemplateRenderError:
    """The error rendering `source` as en/bomb.txt.j2 gives; fails the test if it renders."""
    write(root, "en/bomb.txt.j2", source)
    store = TemplateStore(root, limits=RenderLimits(**limits))  # type: ignore[arg-type]
    with pytest.raises(TemplateRenderError) as caught:
        store.render("bomb", "en", sample_context())
    assert isinstance(caught.value.__cause__, TemplateLimitError), caught.value
    return caught.value


# -- loops ----------------------------------------------------------------------------------------


def test_a_range_over_the_limit_is_refused_with_file_and_line(tmp_path: Path) -> None:
    error = render_error(
        tmp_path, "Hello\n{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n"
    )
    assert "bomb.txt.j2:2: limit: range() of 100000 items, over the limit of 10000" in str(error)


def test_nested_loops_over_lists_stop_at_the_iteration_limit(tmp_path: Path) -> None:
    error = render_error(
        tmp_path, "{% set r = range(10000)|list %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}\n"
    )
    assert "bomb.txt.j2:1: limit: loops went over 50000 iterations in one render" in str(error)


def test_items_a_loop_filters_out_count_as_iterations(tmp_path: Path) -> None:
    error = render_error(
        tmp_path, "{% for a in range(1000) if a < 0 %}{{ a }}{% endfor %}x\n", max_iterations=999
    )
    assert "loops went over 999 iterations" in str(error)


def test_a_loop_within_the_limits_renders(tmp_path: Path) -> None:
    write(tmp_path, "en/fine.txt.j2", "{% for o in orders %}{{ loop.index }}. {{ o }}{{ '\\n' }}{% endfor %}")
    text = TemplateStore(tmp_path).render("fine", "en", sample_context()).text
    assert text == "1. 240517893301234567\n2. 240517893309876543\n"


# -- strings: refused before they are built -------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "'x'|center(10**9)",
        "lipsum(n=10**6)",
        "'x'.ljust(10**9)",
        "'x'.zfill(10**9)",
        "'%1000000000s'|format('x')",
        "'%1000000000s' % 'x'",
        "'{:>1000000000}'.format('x')",
        "'x' * 10**9",
        "range(10000)|join('x' * 100000)",
        "('x' * 100000)|replace('x', 'yyyyyyyyyy')",
        "('x' * 100000).replace('x', 'yyyyyyyyyy')",
        "('a\\n' * 50000)|indent(100000)",
        "[1]|batch(10**9, 'x')|list",
        "('\\t' * 100000).expandtabs(100000)",
        "('a' * 100000)|wordwrap(1, wrapstring='y' * 1000)",
    ],
)
def test_a_string_over_the_limit_is_refused_before_it_is_built(tmp_path: Path, expression: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = render_error(tmp_path, "Hello\n{{ " + expression + " }}\n")
    assert "bomb.txt.j2:2: limit:" in str(error) and "over the limit of 200000" in str(error)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100  # the gigabyte was never allocated


@pytest.mark.parametrize("operator", ["~", "+"])
def test_a_string_doubled_in_a_loop_stops_at_the_limit(tmp_path: Path, operator: str) -> None:
    error = render_error(
        tmp_path,
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        f"{{% set ns.s = ns.s {operator} ns.s %}}{{% endfor %}}{{{{ ns.s|length }}}}\n",
    )
    assert "would build 262144 characters, over the limit of 200000" in str(error)


def test_a_list_of_big_strings_is_refused_when_it_would_be_printed(tmp_path: Path) -> None:
    error = render_error(tmp_path, "{% set s = 'x' * 100000 %}{{ [s] * 100000 }}\n")
    assert "an output expression would build" in str(error)


def test_methods_of_built_in_values_that_replies_never_need_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "en/bomb.txt.j2", "{{ (1).to_bytes(10**9, 'big') }}\n")
    with pytest.raises(
        TemplateRenderError, match=r"bomb\.txt\.j2:1: sandbox: the number method to_bytes"
    ) as caught:
        TemplateStore(tmp_path).render("bomb", "en", sample_context())
    assert isinstance(caught.value.__cause__, SecurityError)


# -- output and time ------------------------------------------------------------------------------


def test_output_over_the_limit_is_refused(tmp_path: Path) -> None:
    error = render_error(
        tmp_path, "{% for i in range(1000) %}" + "y" * 100 + "{% endfor %}\n", max_output=50_000
    )
    assert "bomb.txt.j2:1: limit: the output went over 50000 characters" in str(error)


def test_output_a_macro_buffers_counts_even_if_it_is_never_printed(tmp_path: Path) -> None:
    error = render_error(
        tmp_path,
        "{% macro m() %}{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}"
        "{% set unused = m() %}ok\n",
        max_output=500_000,
    )
    assert "the output went over 500000 characters" in str(error)


def test_constant_text_a_macro_buffers_counts_too(tmp_path: Path) -> None:
    error = render_error(
        tmp_path,
        "{% macro m() %}{% for i in range(1000) %}{{ '" + "z" * 1000 + "' }}{{ 'y'|center(1000) }}"
        "{% endfor %}{% endmacro %}{% set unused = m() %}ok\n",
    )
    assert "the output went over 500000 characters" in str(error)


def test_a_tight_recursion_that_writes_nothing_stops_at_the_time_limit(tmp_path: Path) -> None:
    error = render_error(
        tmp_path,
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}\n{{ f(60) }}ok\n",
        max_seconds=0.2,
    )
    assert "bomb.txt.j2:1: limit: rendering took longer than 0.2 s of CPU time" in str(error)


def test_each_render_gets_a_fresh_budget(tmp_path: Path) -> None:
    write(tmp_path, "en/loop.txt.j2", "{% for i in range(600) %}.{% endfor %}\n")
    store = TemplateStore(tmp_path, limits=RenderLimits(max_iterations=1000))
    for _ in range(3):  # 1,800 iterations together; each render stays under 1,000
        assert store.render("loop", "en", sample_context()).text.startswith("....")


# -- validation -----------------------------------------------------------------------------------


def test_validation_reports_a_limit_breach_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "en/bomb.txt.j2", "Hello\n\n{{ 'x'|center(10**9) }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert (problem.file, problem.line) == (path, 3)
    assert problem.message.startswith("limit: the center filter would build 1000000000 characters")


def test_check_templates_gives_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "en/broken.txt.j2", "Hello\n{% if orders %}\n")
    write(tmp_path, "en/fine.txt.j2", "Hello {{ case_ref }}\n")
    assert check_templates(tmp_path) == [
        f"{path}:2: syntax error: Unexpected end of template. Jinja was "
        "looking for the following tags: 'elif' or 'else' or 'endif'. The "
        "innermost block that needs to be closed is 'if'."
    ]
    assert check_templates(Path(__file__).resolve().parents[2] / "templates") == []


def test_a_garbage_collection_during_a_render_is_not_charged_to_the_template() -> None:
    heap = [[i] for i in range(1_500_000)]  # a long-running process's heap: a full collection walks it
    budget = Budget(RenderLimits(max_seconds=0.01))
    started = budget.deadline - 0.01
    token = BUDGET.set(budget)
    try:
        gc.collect()
        assert time.thread_time() - started > 0.01, "the collection was too fast to show anything"
        budget.check_time()  # raises when the collection's time counts against the render
    finally:
        BUDGET.reset(token)
    del heap

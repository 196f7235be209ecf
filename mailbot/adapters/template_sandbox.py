"""The reply-template sandbox: Jinja2's immutable sandbox plus bounds on work, memory and CPU time.

Jinja2's sandbox stops templates from reaching Python internals, but not from exhausting the worker:
nested `range(100000)` loops run for hours, `'x'|center(10**9)` or `lipsum(n=10**6)` allocate a
gigabyte. A reply template is supervisor-edited input rendered inside the intake transaction, so
every render here is bounded by `RenderLimits`:

* loops: `range()` is capped, and every item any `{% for %}` draws counts against one budget;
* strings: every operation that can build a large string or list (`*`, `+`, `~`, `%`, `center`,
  `ljust`, `format`, `join`, `replace`, `indent`, `wordwrap`, `batch`, `lipsum`, ...) checks the size
  of its result *before* building it; methods of built-in values are an allow-list;
* output: every character a render writes, including what macros and `{% set %}` blocks buffer;
* time: the deadline is checked at every loop iteration, macro and block call, include and sandboxed
  call, so even a tight loop that writes nothing stops (C-level operations are short because their
  inputs are size-bounded).

The checks are inserted into the parsed template (see `add_checks`), so they hold for every
path through it, not just the branches a trial render takes. A breach raises `TemplateLimitError`,
which the template store reports like any other template error, with file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer

from mailbot.adapters.template_limits import (
    BUDGET,
    DEFAULT_LIMITS,
    MAX_EXPONENT,
    MAX_INTEGER_BITS,
    Budget,
    RenderLimits,
    TemplateLimitError,
    bounded_filters,
    budget_of,
    check_method_call,
    check_percent_format,
    check_size,
    size_of,
    width_of,
)

__all__ = [
    "DEFAULT_LIMITS",
    "BoundedSandbox",
    "BoundedTemplate",
    "RenderLimits",
    "TemplateLimitError",
    "add_checks",
    "render_bounded",
]


# -- the checks put into every parsed template --------------------------------------------------


#: Filter names the checks are compiled as: a filter is a direct call (a sandboxed call is not), and
#: these names are not identifiers, so a template cannot write them itself.
_TICK, _LOOP, _CONCAT = "mailbot:tick", "mailbot:loop", "mailbot:concat"


def add_checks(tree: nodes.Template) -> nodes.Template:
    """A tick at the start of every body that can run many times; loops counted; `~` checked."""
    scopes: list[list[nodes.Node]] = [tree.body]
    for node in tree.find_all((nodes.For, nodes.Macro, nodes.CallBlock, nodes.Block)):
        assert isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock | nodes.Block)
        scopes.append(node.body)
        if isinstance(node, nodes.For):
            iterable = cast(nodes.Expr, node.iter)  # declared a Node; the parser only puts an Expr there
            node.iter = _filter(_LOOP, iterable, node.lineno)
    for body in scopes:
        line = body[0].lineno if body else 1
        tick = _filter(_TICK, nodes.Const(_literal_chars(body), lineno=line), line)
        body.insert(0, nodes.ExprStmt(tick, lineno=line))
    result = _ConcatChecker().visit(tree)
    assert isinstance(result, nodes.Template)
    return result


def _filter(name: str, value: nodes.Expr, lineno: int) -> nodes.Filter:
    return nodes.Filter(value, name, [], [], None, None, lineno=lineno)


class _ConcatChecker(NodeTransformer):
    """`a ~ b` becomes a call that checks the total size before joining."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        checked = self.generic_visit(node)
        assert isinstance(checked, nodes.Concat)
        return _filter(_CONCAT, nodes.List(list(checked.nodes), lineno=node.lineno), node.lineno)


@pass_context  # a context filter is never folded into a constant when the template is compiled
def _tick(context: Context, literal_chars: int) -> str:
    budget = budget_of(context.environment)
    budget.check_time()
    budget.write(literal_chars)
    return ""


@pass_context
def _loop_items(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = budget_of(context.environment)
    for item in iterable:
        budget.step()
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, items: list[Any]) -> str:
    limits = budget_of(eval_ctx.environment).limits
    check_size("'~'", sum(size_of(item, limits.max_string) for item in items), limits)
    return (markup_join if eval_ctx.autoescape else str_join)(items)


def _literal_chars(body: list[nodes.Node]) -> int:
    """Characters of template text this body writes each time it runs (nested loops/macros apart)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.For):
            stack.extend(node.else_)
            continue
        if isinstance(node, nodes.Macro | nodes.CallBlock | nodes.Block):
            continue
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.Output):  # `{{ "text" }}` is written without passing finalize
            total += sum(
                len(c.value) for c in node.nodes if isinstance(c, nodes.Const) and isinstance(c.value, str)
            )
        stack.extend(node.iter_child_nodes())
    return total


class BoundedTemplate(Template):
    """A template whose `render` runs under a fresh budget of its environment's limits."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        context = self.new_context(dict(*args, **kwargs))
        limits = getattr(self.environment, "limits", DEFAULT_LIMITS)
        try:
            return render_bounded(lambda: self.root_render_func(context), limits)
        except Exception:
            self.environment.handle_exception()  # re-raises with the template's file and lines


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every render bounded by `limits` (see the module docstring)."""

    template_class = BoundedTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, limits: RenderLimits = DEFAULT_LIMITS, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.limits = limits
        self.filters.update(bounded_filters())
        self.filters.update({_TICK: _tick, _LOOP: _loop_items, _CONCAT: _concat})
        self.globals["range"] = self._range
        self.globals["lipsum"] = self._lipsum

    # every template is checked as it is parsed, so no path through it escapes the bounds
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        return add_checks(tree)

    def _finalize(self, value: Any) -> Any:
        budget = budget_of(self)
        size = size_of(value, self.limits.max_string)
        check_size("an output expression", size, self.limits)
        budget.write(size)
        return value

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > self.limits.max_range:
            raise TemplateLimitError(
                f"range() of {len(numbers)} items, over the limit of {self.limits.max_range}"
            )
        return numbers

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        words = width_of(n) * width_of(max)
        check_size("lipsum()", words * 12, self.limits)
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget_of(self).check_time()
        check_method_call(obj, args, kwargs, self.limits)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                    check_size("repetition", len(sequence) * count, self.limits)
            both_int = isinstance(left, int) and isinstance(right, int)
            if both_int and left.bit_length() + right.bit_length() > MAX_INTEGER_BITS:
                raise TemplateLimitError(f"a number over {MAX_INTEGER_BITS} bits")
        elif operator == "**" and isinstance(right, int | float):
            if abs(right) > MAX_EXPONENT:
                raise TemplateLimitError(f"exponent above {MAX_EXPONENT} is not allowed")
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_INTEGER_BITS:
                raise TemplateLimitError(f"a number over {MAX_INTEGER_BITS} bits")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                check_size("'+'", len(left) + len(right), self.limits)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right, self.limits)
        return super().call_binop(context, operator, left, right)


def render_bounded(render: Callable[[], Iterable[str]], limits: RenderLimits) -> str:
    """Run one render under a fresh budget: the output is counted as it comes and the deadline checked."""
    budget = Budget(limits)
    token = BUDGET.set(budget)
    try:
        parts: list[str] = []
        size = 0
        for chunk in render():
            size += len(chunk)
            if size > limits.max_output:
                raise TemplateLimitError(f"the output went over {limits.max_output} characters")
            parts.append(chunk)
        budget.check_time()
        return "".join(parts)
    finally:
        BUDGET.reset(token)

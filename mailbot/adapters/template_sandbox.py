"""The reply-template sandbox: Jinja2's immutable sandbox plus bounds on work, memory and wall time.

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

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost. The defaults are far above any real reply and far below harm."""

    max_range: int = 10_000  # items in one range()
    max_iterations: int = 50_000  # items drawn by all {% for %} loops of one render together
    max_string: int = 200_000  # characters (or items) of any one string or list a template builds
    max_output: int = 500_000  # characters one render writes, buffered macro/set output included
    max_seconds: float = 1.0  # wall time of one render


DEFAULT_LIMITS = RenderLimits()
MAX_EXPONENT = 1_000
MAX_INTEGER_BITS = 100_000


class TemplateLimitError(SecurityError):
    """A template went over one of the render limits; the message says which and how."""


# -- the per-render budget ----------------------------------------------------------------------


class _Budget:
    __slots__ = ("deadline", "iterations", "limits", "written")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.iterations = 0
        self.written = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"rendering took longer than {self.limits.max_seconds:g} s")

    def step(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise TemplateLimitError(f"loops went over {self.limits.max_iterations} iterations in one render")
        if not self.iterations & 0x3F:
            self.check_time()

    def write(self, chars: int) -> None:
        self.written += chars
        if self.written > self.limits.max_output:
            raise TemplateLimitError(f"the output went over {self.limits.max_output} characters")


_BUDGET: ContextVar[_Budget | None] = ContextVar("mailbot_template_budget", default=None)


def _budget(environment: Any) -> _Budget:
    """The budget of the render in progress (`BoundedTemplate.render`).

    Code driving a template some other way (`generate`, `stream`) gets a fresh budget at every check:
    sizes stay bounded, the loop count and the deadline do not. The store always renders.
    """
    budget = _BUDGET.get()
    return budget if budget is not None else _Budget(getattr(environment, "limits", DEFAULT_LIMITS))


# -- sizes, counted before anything is built ----------------------------------------------------


def size_of(value: Any, limit: int) -> int:
    """About how many characters `str(value)` would have; stops counting once past `limit`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool | float | None):
        return 8
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    total = 0
    stack: list[Any] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 4
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            if total <= limit:  # no need to look inside what is already too big
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, Namespace):
            attrs = getattr(item, "_Namespace__attrs", {})
            total += 16 + 2 * len(attrs)
            stack.append(attrs)
        else:
            total += 20 if not isinstance(item, int) else item.bit_length() // 3 + 1
    return total


def _check_size(what: str, size: int, limits: RenderLimits) -> None:
    if size > limits.max_string:
        raise TemplateLimitError(
            f"{what} would build {size} characters, over the limit of {limits.max_string}"
        )


def _width(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def check_percent_format(fmt: str, args: Any, limits: RenderLimits) -> None:
    """`fmt % args` (and the `format` filter): no `*` widths, widths and the result within the limit."""
    widths = 0
    fields = 0
    for match in _PERCENT_SPEC.finditer(fmt):
        width, precision, conversion = match.groups()
        if "*" in (width, precision):
            raise TemplateLimitError("'*' widths in % formatting are not allowed")
        widths += int(width or 0) + int(precision or 0)
        fields += conversion != "%"
    _check_size("% formatting", len(fmt) + widths + fields * size_of(args, limits.max_string), limits)


def check_brace_format(
    fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], limits: RenderLimits
) -> None:
    """`fmt.format(...)`: no nested {} in a format spec; widths and the result within the limit."""
    widths = 0
    fields = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise SecurityError(f"bad format string: {exc}") from None
    for _literal, field, spec, _conversion in parsed:
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise TemplateLimitError("nested {} in a format spec are not allowed")
        widths += sum(int(digits) for digits in re.findall(r"\d+", spec or ""))
    biggest = max((size_of(v, limits.max_string) for v in (*args, *kwargs.values())), default=0)
    _check_size("str.format", len(fmt) + widths + fields * biggest, limits)


# -- methods of built-in values: an allow-list, with sizes checked ------------------------------

_STR_METHODS = frozenset(
    [
        "capitalize",
        "casefold",
        "center",
        "count",
        "endswith",
        "expandtabs",
        "find",
        "format",
        "format_map",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "ljust",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rjust",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
        "striptags",
        "unescape",
        "escape",
    ]
)
_SEQUENCE_METHODS = frozenset({"count", "index", "copy"})
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values", "copy"})
_NUMBER_METHODS = frozenset({"is_integer", "bit_length", "conjugate"})


def _replace_size(text: str, old: str, new: str, count: Any = -1) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + max(0, len(new) - len(old)) * occurrences


def check_method_call(
    method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limits: RenderLimits
) -> None:
    """Refuse methods of built-in values that are not needed in replies, and oversized results."""
    method = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format to police it
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, str):
        if name not in _STR_METHODS:
            raise SecurityError(f"the string method {name}() is not allowed in reply templates")
        _check_str_method(owner, name, args, kwargs, limits)
    elif isinstance(owner, bool | int | float) and name not in _NUMBER_METHODS:
        raise SecurityError(f"the number method {name}() is not allowed in reply templates")
    elif isinstance(owner, list | tuple) and name not in _SEQUENCE_METHODS:
        raise SecurityError(f"the list method {name}() is not allowed in reply templates")
    elif isinstance(owner, dict) and name not in _MAPPING_METHODS:
        raise SecurityError(f"the mapping method {name}() is not allowed in reply templates")
    elif isinstance(owner, bytes | bytearray):
        raise SecurityError("bytes are not allowed in reply templates")


def _check_str_method(
    text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], limits: RenderLimits
) -> None:
    if name in {"center", "ljust", "rjust", "zfill"}:
        width = _width(args[0] if args else kwargs.get("width", 0))
        _check_size(f"str.{name}", max(width, len(text)), limits)
    elif name == "expandtabs":
        tabsize = _width(args[0] if args else kwargs.get("tabsize", 8))
        _check_size("str.expandtabs", len(text) + text.count("\t") * tabsize, limits)
    elif name == "join":
        items = args[0] if args else ()
        if isinstance(items, list | tuple):
            size = size_of(items, limits.max_string) + len(text) * len(items)
            _check_size("str.join", size, limits)
        else:
            raise SecurityError("str.join() takes a list here; use the join filter")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_size(
            "str.replace", _replace_size(text, args[0], args[1], args[2] if len(args) > 2 else -1), limits
        )
    elif name == "format":
        check_brace_format(text, args, kwargs, limits)
    elif name == "format_map":
        check_brace_format(text, (), args[0] if args and isinstance(args[0], Mapping) else {}, limits)


# -- filters and globals: the amplifiers checked before they run ---------------------------------

#: Filters whose result grows with the size of their input; the input is checked first.
_SIZED_FILTERS = frozenset(
    [
        "string",
        "pprint",
        "tojson",
        "urlencode",
        "xmlattr",
        "forceescape",
        "escape",
        "e",
        "urlize",
        "striptags",
        "title",
        "capitalize",
        "upper",
        "lower",
        "trim",
        "wordcount",
        "safe",
        "list",
        "sum",
        "sort",
        "unique",
        "dictsort",
        "groupby",
        "map",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "reverse",
        "format",
    ]
)
#: Filters whose arguments can make the result much larger than the input.
_AMPLIFYING_FILTERS = frozenset(
    {"center", "indent", "join", "replace", "wordwrap", "truncate", "batch", "slice"}
)


def _check_filter(
    name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limits: RenderLimits
) -> Any:
    """Check one filter call before it runs; returns the value to pass on (a generator made a list)."""
    cap = limits.max_string

    def arg(index: int, key: str, default: Any) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    if name not in _SIZED_FILTERS and name not in _AMPLIFYING_FILTERS:
        return value
    plain = isinstance(value, str | list | tuple | Mapping | int | float | bool | range | None)
    if not plain and isinstance(value, Iterable):
        value = _take(value, cap)  # a generator (map, select...): its size is known only once taken
    text_size = size_of(value, cap)
    _check_size(f"the {name} filter", text_size, limits)
    if name == "center":
        _check_size("the center filter", max(text_size, _width(arg(0, "width", 80))), limits)
    elif name == "indent":
        width = arg(0, "width", 4)
        per_line = len(width) if isinstance(width, str) else _width(width)
        lines = str(value).count("\n") + 1
        _check_size("the indent filter", text_size + per_line * lines, limits)
    elif name == "join":
        items = len(value) if isinstance(value, list | tuple | dict) else text_size
        separator = arg(0, "d", "")
        _check_size("the join filter", text_size + size_of(separator, cap) * items, limits)
    elif name == "replace":
        old, new = arg(0, "old", ""), arg(1, "new", "")
        if isinstance(old, str) and isinstance(new, str):
            _check_size(
                "the replace filter", _replace_size(str(value), old, new, arg(2, "count", -1)), limits
            )
    elif name == "wordwrap":
        wrapstring = arg(3, "wrapstring", None) or "\n"
        width = max(1, _width(arg(0, "width", 79)))
        lines = text_size // width + str(value).count("\n") + 1
        _check_size("the wordwrap filter", text_size + lines * size_of(wrapstring, cap), limits)
    elif name == "truncate":
        _check_size("the truncate filter", text_size + size_of(arg(2, "end", "..."), cap), limits)
    elif name == "format":
        check_percent_format(str(value), kwargs or args, limits)
    elif name in {"batch", "slice"}:
        count = _width(arg(0, "linecount" if name == "batch" else "slices", 1))
        _check_size(f"the {name} filter", count, limits)
    return value


def _take(items: Iterable[Any], cap: int) -> list[Any]:
    taken: list[Any] = []
    for item in items:
        taken.append(item)
        if len(taken) > cap:
            raise TemplateLimitError(f"a sequence went over {cap} items")
    return taken


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its arguments checked first. The wrapper takes the render context, which also
    keeps Jinja from running it at compile time on constant arguments (where no budget applies and
    a folded constant would escape the output count), and hands `function` what it asked for."""
    passes = _PassArg.from_obj(function)

    def first(context: Context) -> tuple[Any, ...]:
        if passes is _PassArg.context:
            return (context,)
        if passes is _PassArg.eval_context:
            return (context.eval_ctx,)
        if passes is _PassArg.environment:
            return (context.environment,)
        return ()

    @pass_context
    @wraps(function)
    def bounded(context: Context, value: Any = None, *args: Any, **kwargs: Any) -> Any:
        value = _check_filter(name, value, args, kwargs, _limits_of(context.environment))
        return function(*first(context), value, *args, **kwargs)

    return bounded


def _limits_of(environment: Any) -> RenderLimits:
    budget = _BUDGET.get()
    if budget is not None:
        return budget.limits
    return getattr(environment, "limits", DEFAULT_LIMITS)


def bounded_filters() -> dict[str, Callable[..., Any]]:
    return {name: _bounded_filter(name, function) for name, function in FILTERS.items()}


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
    budget = _budget(context.environment)
    budget.check_time()
    budget.write(literal_chars)
    return ""


@pass_context
def _loop_items(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget(context.environment)
    for item in iterable:
        budget.step()
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, items: list[Any]) -> str:
    limits = _budget(eval_ctx.environment).limits
    _check_size("'~'", sum(size_of(item, limits.max_string) for item in items), limits)
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
        budget = _budget(self)
        size = size_of(value, self.limits.max_string)
        _check_size("an output expression", size, self.limits)
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
        words = _width(n) * _width(max)
        _check_size("lipsum()", words * 12, self.limits)
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _budget(self).check_time()
        check_method_call(obj, args, kwargs, self.limits)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                    _check_size("repetition", len(sequence) * count, self.limits)
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
                _check_size("'+'", len(left) + len(right), self.limits)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right, self.limits)
        return super().call_binop(context, operator, left, right)


def render_bounded(render: Callable[[], Iterable[str]], limits: RenderLimits) -> str:
    """Run one render under a fresh budget: the output is counted as it comes and the deadline checked."""
    budget = _Budget(limits)
    token = _BUDGET.set(budget)
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
        _BUDGET.reset(token)

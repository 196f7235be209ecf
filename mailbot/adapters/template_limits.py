"""The limits of one reply-template render, and the checks that keep every operation within them.

`RenderLimits` says what one render may cost; `Budget` counts what it has spent (loop items,
characters written, time), one per render, found through a context variable so that the checks
compiled into templates and the sandbox's hooks share it without any global state between
threads. The rest are the checks the sandbox runs *before* an operation builds anything: the size
of what a value would print as, % and {} formatting, an allow-list of the methods of built-in
values, and the filters whose result can be much larger than their input.
"""

from __future__ import annotations

import gc
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.utils import Namespace, _PassArg, pass_context


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost. The defaults are far above any real reply and far below harm."""

    max_range: int = 10_000  # items in one range()
    max_iterations: int = 50_000  # items drawn by all {% for %} loops of one render together
    max_string: int = 200_000  # characters (or items) of any one string or list a template builds
    max_output: int = 500_000  # characters one render writes, buffered macro/set output included
    # CPU time of the rendering thread, not wall time: a loaded machine (another process hogging the
    # cores) must not fail a render, or a `rules check`, that passes on an idle one.
    max_seconds: float = 1.0


DEFAULT_LIMITS = RenderLimits()
MAX_EXPONENT = 1_000
MAX_INTEGER_BITS = 100_000


class TemplateLimitError(SecurityError):
    """A template went over one of the render limits; the message says which and how."""


# -- the per-render budget ----------------------------------------------------------------------


class Budget:
    """What one render has spent so far; raises TemplateLimitError the moment it goes over a limit."""

    __slots__ = ("collecting_since", "deadline", "iterations", "limits", "written")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.thread_time() + limits.max_seconds
        self.iterations = 0
        self.written = 0
        self.collecting_since: float | None = None

    def check_time(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateLimitError(f"rendering took longer than {self.limits.max_seconds:g} s of CPU time")

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


BUDGET: ContextVar[Budget | None] = ContextVar("mailbot_template_budget", default=None)


def _garbage_collection_is_not_the_templates(phase: str, info: dict[str, int]) -> None:
    """A full garbage collection that happens to start during a render walks the whole process's
    heap; in a long-running process that took over a second of CPU and failed a good template
    (found by the suite in CI). The collector runs in the thread that triggered it, so the render's
    deadline there moves by the time the collection took."""
    budget = BUDGET.get()
    if budget is None:
        return
    if phase == "start":
        budget.collecting_since = time.thread_time()
    elif budget.collecting_since is not None:
        budget.deadline += time.thread_time() - budget.collecting_since
        budget.collecting_since = None


gc.callbacks.append(_garbage_collection_is_not_the_templates)


def budget_of(environment: Any) -> Budget:
    """The budget of the render in progress (`BoundedTemplate.render`).

    Code driving a template some other way (`generate`, `stream`) gets a fresh budget at every check:
    sizes stay bounded, the loop count and the deadline do not. The store always renders.
    """
    budget = BUDGET.get()
    return budget if budget is not None else Budget(getattr(environment, "limits", DEFAULT_LIMITS))


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


def check_size(what: str, size: int, limits: RenderLimits) -> None:
    if size > limits.max_string:
        raise TemplateLimitError(
            f"{what} would build {size} characters, over the limit of {limits.max_string}"
        )


def width_of(value: Any) -> int:
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
    check_size("% formatting", len(fmt) + widths + fields * size_of(args, limits.max_string), limits)


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
    check_size("str.format", len(fmt) + widths + fields * biggest, limits)


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
        width = width_of(args[0] if args else kwargs.get("width", 0))
        check_size(f"str.{name}", max(width, len(text)), limits)
    elif name == "expandtabs":
        tabsize = width_of(args[0] if args else kwargs.get("tabsize", 8))
        check_size("str.expandtabs", len(text) + text.count("\t") * tabsize, limits)
    elif name == "join":
        items = args[0] if args else ()
        if isinstance(items, list | tuple):
            size = size_of(items, limits.max_string) + len(text) * len(items)
            check_size("str.join", size, limits)
        else:
            raise SecurityError("str.join() takes a list here; use the join filter")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        check_size(
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
    check_size(f"the {name} filter", text_size, limits)
    if name == "center":
        check_size("the center filter", max(text_size, width_of(arg(0, "width", 80))), limits)
    elif name == "indent":
        width = arg(0, "width", 4)
        per_line = len(width) if isinstance(width, str) else width_of(width)
        lines = str(value).count("\n") + 1
        check_size("the indent filter", text_size + per_line * lines, limits)
    elif name == "join":
        items = len(value) if isinstance(value, list | tuple | dict) else text_size
        separator = arg(0, "d", "")
        check_size("the join filter", text_size + size_of(separator, cap) * items, limits)
    elif name == "replace":
        old, new = arg(0, "old", ""), arg(1, "new", "")
        if isinstance(old, str) and isinstance(new, str):
            check_size("the replace filter", _replace_size(str(value), old, new, arg(2, "count", -1)), limits)
    elif name == "wordwrap":
        wrapstring = arg(3, "wrapstring", None) or "\n"
        width = max(1, width_of(arg(0, "width", 79)))
        lines = text_size // width + str(value).count("\n") + 1
        check_size("the wordwrap filter", text_size + lines * size_of(wrapstring, cap), limits)
    elif name == "truncate":
        check_size("the truncate filter", text_size + size_of(arg(2, "end", "..."), cap), limits)
    elif name == "format":
        check_percent_format(str(value), kwargs or args, limits)
    elif name in {"batch", "slice"}:
        count = width_of(arg(0, "linecount" if name == "batch" else "slices", 1))
        check_size(f"the {name} filter", count, limits)
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
    budget = BUDGET.get()
    if budget is not None:
        return budget.limits
    return getattr(environment, "limits", DEFAULT_LIMITS)


def bounded_filters() -> dict[str, Callable[..., Any]]:
    return {name: _bounded_filter(name, function) for name, function in FILTERS.items()}

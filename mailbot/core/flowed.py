"""format=flowed (RFC 3676): soft line breaks joined, so a hard-wrapped order number is one line."""

from __future__ import annotations


def unflow(text: str, *, delsp: bool) -> str:
    """Join soft line breaks of a format=flowed body; a hard-wrapped order number becomes one line."""
    out: list[str] = []
    pending = ""
    pending_depth = 0
    open_paragraph = False
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw_line) - len(raw_line.lstrip(">"))
        line = raw_line[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if open_paragraph and depth != pending_depth:
            out.append(_quote_prefix(pending_depth) + pending)
            pending, open_paragraph = "", False
        pending_depth = depth
        if delsp and pending and _keeps_space(pending[-1:], line[:1]):
            # Many clients label delsp=yes yet break at a real space; between two words of a
            # spaced script that space was meant. Digits and CJK join without one.
            pending += " "
        if line.endswith(" ") and line.rstrip() != "--":
            pending += line[:-1] if delsp else line
            open_paragraph = True
            continue
        out.append(_quote_prefix(depth) + pending + line)
        pending, open_paragraph = "", False
    if open_paragraph:
        out.append(_quote_prefix(pending_depth) + pending)
    return "\n".join(out)


def _keeps_space(before: str, after: str) -> bool:
    if not before or not after or before.isspace() or after.isspace():
        return False
    if before.isdigit() and after.isdigit():
        return False
    return not (_is_unspaced_script(before) or _is_unspaced_script(after))


def _is_unspaced_script(char: str) -> bool:
    return (
        "\u2e80" <= char <= "\u9fff"
        or "\uac00" <= char <= "\ud7af"
        or "\u0e00" <= char <= "\u0e7f"
        or ("\uff00" <= char <= "\uffef")
    )


def _quote_prefix(depth: int) -> str:
    return ">" * depth + " " if depth else ""

"""Reply and forward prefixes of subjects ("Re:", "AW:", "Odp:", "回复:", "Fwd:", "TR:", "转发:"), as data.

Mail clients write them in the user's language, so they live in the lexicon files under rules/
(`[subject] reply_prefixes`, `forward_prefixes`), one list per language, and every stage reads
them from here: automation (a reply to us is not a new robot), intent (the topic without the
prefixes; a reply weighs its subject less), the text splitter (a forwarded mail's header block is
forwarded content, not history) and our replies' subjects ("Re: [Case #…] topic", no old prefixes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_NEVER = re.compile(r"(?!x)x")


@dataclass(frozen=True)
class SubjectPrefixes:
    """(language, prefix) pairs; a prefix is matched in any case, followed by ":" or "：".

    Some clients count replies ("RE[2]:"); the count is allowed between prefix and colon.
    """

    reply: tuple[tuple[str, str], ...] = ()
    forward: tuple[tuple[str, str], ...] = ()
    _reply: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)
    _forward: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)
    _leading: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        reply = _alternatives(p for _, p in self.reply)
        forward = _alternatives(p for _, p in self.forward)
        both = _alternatives(p for _, p in (*self.reply, *self.forward))
        one = r"\s*(?:\[\d{1,4}\])?\s*[:：]"
        object.__setattr__(self, "_reply", re.compile(rf"^\s*(?:{reply}){one}", re.I) if reply else _NEVER)
        object.__setattr__(
            self,
            "_forward",
            re.compile(rf"^\s*(?:(?:{reply}){one}\s*)*(?:{forward}){one}", re.I) if forward else _NEVER,
        )
        object.__setattr__(
            self, "_leading", re.compile(rf"^\s*(?:(?:{both}){one}\s*)+", re.I) if both else _NEVER
        )

    def is_reply(self, subject: str) -> bool:
        """The subject starts with a reply prefix ("Re:", "AW:", "Odp:")."""
        return self._reply.match(subject) is not None

    def is_forward(self, subject: str) -> bool:
        """The subject says the mail forwards something ("Fwd:", "Re: TR:")."""
        return self._forward.match(subject) is not None

    def strip(self, subject: str) -> str:
        """The subject without its leading reply and forward prefixes ("Re: Fwd: AW: x" → "x")."""
        return self._leading.sub("", subject, count=1)


def _alternatives(prefixes: Iterable[str]) -> str:
    """A regex alternation of the prefixes, longest first; a space inside one matches any blanks."""
    unique = sorted({p.strip() for p in prefixes if p.strip()}, key=lambda p: (-len(p), p))
    return "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in unique)


#: No prefix known (configs built without rules/): no subject reads as a reply or a forward.
NO_PREFIXES = SubjectPrefixes()

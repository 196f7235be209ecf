"""What our receiving server found out about the sender: did the mail pass SPF, DKIM, DMARC?

Used twice: by the `authentication` predicate of the rules, and by the intent, where a sender who
failed authentication and writes like bulk mail is read as spam (phishing imitates the platform
and names real-looking order numbers, so its words alone do not give it away).
"""

from __future__ import annotations

import re

from mailbot.core.types import InboundMail

AUTH_VERDICTS = ("pass", "fail", "none")
_RESULT = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)")


def auth_verdict(mail: InboundMail) -> tuple[str, str]:
    """pass / fail / none from the topmost Authentication-Results header (the one our server added).

    DMARC decides when present, because only DMARC ties the result to the From address people see.
    Without it, a DKIM or SPF pass counts as pass and a fail or softfail of both as fail.
    """
    header = mail.header("Authentication-Results")
    if header is None:
        return "none", "no Authentication-Results header"
    results: dict[str, str] = {}
    for method, result in _RESULT.findall(header.lower()):
        results.setdefault(method, result)
    if results.get("dmarc") in ("pass", "fail"):
        return results["dmarc"], f"dmarc={results['dmarc']}"
    passed = [m for m in ("dkim", "spf") if results.get(m) == "pass"]
    if passed:
        return "pass", " ".join(f"{m}=pass" for m in passed)
    failed = [m for m in ("dkim", "spf") if results.get(m) in ("fail", "softfail")]
    if failed:
        return "fail", " ".join(f"{m}={results[m]}" for m in failed)
    return "none", "no pass or fail result in Authentication-Results"

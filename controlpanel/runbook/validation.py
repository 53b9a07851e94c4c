"""Judging what a bundle file said: the validation file's RESULT lines and the bundle's own failure reports.

Pure (no connection, no Django): the step executor and the rehearsal both call `judge`, so a validation run
means the same thing in both. A category fails when its RESULT line says FAILED *or* one of its detail lines
says FAIL (a file that prints PASSED regardless is caught by its own details); a NOTICE/WARNING line that
reports a failed check ("Found 20000 audit reports without organization context") fails the file.
"""

import re
from dataclasses import dataclass, field

RESULT_LINE = re.compile(r"RESULT:\s*\[?(?P<category>.+?)\]?\s+tests\s+(?P<status>PASSED|FAILED)", re.I)
# "<Category>: FAIL ..." detail lines of the validation file (the header of test-multi-tenant-migration.sql).
DETAIL_FAIL = re.compile(r"^\s*(?P<category>[^:]{1,60}):\s*FAIL(ED)?\b", re.I)
# A check that counted offenders and found some: "Found 20000 audit reports without organization context",
# "3 users without a membership", "12 rows have no organization". Zero counts are fine.
REPORTED_FAILURE = (
    re.compile(r"\bfound\s+(?P<n>\d[\d,]*)\b[^.;]*\b(without|missing|orphan\w*|no\s+\w+|invalid|mismatch\w*)\b",
               re.I),
    re.compile(r"(?<![\w.])(?P<n>\d[\d,]*)\s+[\w ]{0,40}?\b(without|lack(s|ing)?|missing|orphan\w*)\b"
               r"[^.;]*\b(organi[sz]ation|membership|owner|tenant)", re.I),
    re.compile(r"\b(check|test|validation|verification)\s+failed\b", re.I),
)


@dataclass(frozen=True)
class Category:
    name: str
    status: str  # PASSED / FAILED (as judged, not only as printed)
    details: tuple[str, ...] = ()
    printed: str = ""  # what the RESULT line itself said


@dataclass(frozen=True)
class Verdict:
    categories: tuple[Category, ...] = ()
    reported_failures: tuple[str, ...] = ()  # NOTICE/WARNING lines that report a failed check
    expect_results: bool = True
    problems: tuple[str, ...] = field(default=())

    @property
    def failed_categories(self) -> list[str]:
        return [c.name for c in self.categories if c.status != "PASSED"]

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        return "; ".join(self.problems)

    def as_dicts(self) -> list[dict]:
        return [{"category": c.name, "status": c.status, "details": list(c.details), "printed": c.printed}
                for c in self.categories]


def _message(notice) -> tuple[str, str]:
    """(message, severity) from a plain string or a sink event dict."""
    if isinstance(notice, dict):
        return notice.get("message", ""), (notice.get("severity") or "NOTICE").upper()
    return str(notice), "NOTICE"


def reports_failure(message: str, severity: str = "NOTICE") -> bool:
    """True when a NOTICE/WARNING line says a check found offenders (a count above zero) or failed."""
    for pattern in REPORTED_FAILURE:
        match = pattern.search(message)
        if not match:
            continue
        count = match.groupdict().get("n")
        if count is None or int(count.replace(",", "")) > 0:
            return True
    return False


def parse_categories(notices) -> list[Category]:
    """Detail lines belong to the RESULT line that follows them; a FAIL detail fails its category."""
    categories, details = [], []
    for notice in notices:
        message, _ = _message(notice)
        match = RESULT_LINE.search(message)
        if not match:
            details.append(message)
            continue
        printed = match["status"].upper()
        failed_detail = any(DETAIL_FAIL.match(d) for d in details)
        status = "FAILED" if printed == "FAILED" or failed_detail else "PASSED"
        categories.append(Category(match["category"].strip(), status, tuple(details), printed))
        details = []
    return categories


def judge(notices, *, expect_results: bool = True) -> Verdict:
    """The verdict on one file's notices. `expect_results`: a validation file (RESULT lines required)."""
    categories = tuple(parse_categories(notices)) if expect_results else ()
    reported = tuple(m for m, sev in map(_message, notices)
                     if not RESULT_LINE.search(m) and not DETAIL_FAIL.match(m) and reports_failure(m, sev))
    problems = []
    if expect_results and not categories:
        problems.append("The validation file printed no RESULT lines.")
    failed = [c for c in categories if c.status != "PASSED"]
    if failed:
        problems.append("Validation FAILED: " + ", ".join(c.name for c in failed))
    lied = [c.name for c in categories if c.printed == "PASSED" and c.status == "FAILED"]
    if lied:
        problems.append("printed PASSED despite FAIL details: " + ", ".join(lied))
    if reported:
        problems.append("the bundle reported failed checks: " + "; ".join(r[:200] for r in reported[:5]))
    return Verdict(categories, reported, expect_results, tuple(problems))

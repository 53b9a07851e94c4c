"""What the rehearsal concludes from its evidence: one typed verdict per criterion and stage.

Pure functions over measured results (no database, no Django models): each returns a ``Verdict`` naming
the object at fault. A check that could not run is *not met* with its reason, never "not measured".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Lock modes that make writers wait for a scan of the whole table (a non-concurrent index build, a CHECK or
# foreign key validated at once): judged at any size, because their time grows with the table's rows.
SCANNING_LOCKS = ("ShareLock", "ExclusiveLock")
STRONG_LOCKS = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
# A set-based backfill moves tens of thousands of rows a second; a row-by-row one (a statement or a
# sub-transaction per row) a few hundred. Only judged when a file takes longer than ROW_BY_ROW_MIN_SECONDS.
ROW_BY_ROW_ROWS_PER_SECOND = 2_000
ROW_BY_ROW_MIN_SECONDS = 5.0
# The runbook's minutes describe an installation of this many tenant rows (the 1M-report demo).
RUNBOOK_REFERENCE_ROWS = 1_000_000
RUNBOOK_FLOOR_SECONDS = 30.0


@dataclass(frozen=True)
class Verdict:
    key: str  # criterion: "access", "probes", "contents", …
    criterion: str  # what it asserts, in words
    stage: str  # "after <file>", "after the forward files", "rollback", "copy"
    passed: bool
    message: str = ""  # what was found, naming the object; the reason when the check could not run
    blocking: bool = True
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _v(key, criterion, stage, passed, message="", blocking=True, **evidence) -> Verdict:
    return Verdict(key, criterion, stage, bool(passed), message, blocking, evidence)


def evidence_passed(verdicts: list[Verdict]) -> bool:
    return bool(verdicts) and all(v.passed for v in verdicts if v.blocking)


def first_failure(verdicts: list[Verdict]) -> Verdict | None:
    return next((v for v in verdicts if v.blocking and not v.passed), None)


# --- the copy ------------------------------------------------------------------------------------------

def judge_seeding(schema_only: bool, seeding: dict | None, min_users: int = 2) -> Verdict:
    criterion = "The copy has rows to migrate (schema-only copies are seeded with synthetic rows)"
    if not schema_only:
        return _v("data", criterion, "copy", True, "full copy: the target's own rows")
    if not seeding or not seeding.get("ok"):
        reason = (seeding or {}).get("error") or "seeding did not run"
        return _v("data", criterion, "copy", False,
                  f"SCHEMA-ONLY COPY WITHOUT DATA: synthetic seeding failed ({reason}); nothing the evidence says "
                  "about rows would mean anything", seeding=seeding)
    users = seeding.get("users_with_rows", 0)
    if users < min_users:
        return _v("data", criterion, "copy", False,
                  f"SCHEMA-ONLY COPY: seeding left {users} user(s) with rows; the access diff needs at least "
                  f"{min_users}", seeding=seeding)
    return _v("data", criterion, "copy", True,
              f"SCHEMA-ONLY COPY: no customer row read; {users} synthetic users with rows seeded through the "
              "installation's own constraints", seeding=seeding)


# --- per forward file -----------------------------------------------------------------------------------

def judge_rewrites(stage: str, before: dict[str, int], after: dict[str, int]) -> Verdict:
    rewritten = sorted(t for t, node in before.items() if t in after and after[t] != node)
    return _v("rewrite", "No pre-existing table is rewritten (relfilenode unchanged)", stage, not rewritten,
              "; ".join(f"{t} rewritten (relfilenode {before[t]} → {after[t]}): ACCESS EXCLUSIVE for the whole "
                        "rewrite" for t in rewritten), tables=rewritten)


def judge_probes(stage: str, matrix: dict | None, *, final: bool, error: str = "") -> Verdict:
    """Intermediate states: any leak, escalation or probe error fails. Final state: the whole matrix."""
    criterion = "Isolation probes: no user reaches or writes another organization's rows"
    if matrix is None:
        return _v("probes", criterion, stage, False, f"the probes could not run: {error or 'no result'}")
    cells = matrix.get("cells", [])
    if final:
        # The legacy write path is judged for real users: the probes' synthetic member was not created the way
        # the bundle creates users (no personal organization of its own), so its legacy insert proves nothing.
        bad = [c for c in cells if c["status"] in ("leak", "escalation", "error", "missing")
               or (c["status"] == "broken" and c["subject"] != "probe member")]
    else:
        # Before the organization policies exist, organization writes mean nothing, and a view or anon exposure
        # may predate the migration: what users read of tables is judged (the access diff judges the rest).
        bad = [c for c in cells if c["subject"] not in ("anon", "service_role")
               and (c["status"] == "error" or (c["status"] == "leak" and c["action"] == "read"))]
    examples = [f"{c['subject']} {c['action']} {c['table']}: {c['status']} ({c['detail'] or c['observed']})"
                for c in bad[:5]]
    setup = (matrix.get("setup") or {}).get("error")
    if final and setup and not bad:
        return _v("probes", criterion, stage, False, f"isolation not shown: {setup}", setup=matrix.get("setup"))
    return _v("probes", criterion, stage, not bad, "; ".join(examples), failures=len(bad),
              cells=[c for c in bad[:20]])


def judge_access(stage: str, diff, *, final: bool, error: str = "") -> Verdict:
    """The access diff (evidence/access.AccessDiff): any exposure, and any cell that could not be measured, fails
    at every stage; a loss of own rows fails after the last file only (between files it is the documented
    access window: rows not yet moved into an organization)."""
    criterion = "No user can reach data they could not reach before (access diff)"
    if diff is None or diff.error:
        return _v("access", criterion, stage, False,
                  f"the access diff could not run: {error or (diff.error if diff else '') or 'no result'}")
    problems = [f"{d.subject} gains {d.action} on {d.relation}: {d.gained} row(s)"
                + (f", e.g. {', '.join(d.gained_examples[:3])}" if d.gained_examples else "") for d in diff.exposures]
    problems += [f"{d.subject} {d.relation} {d.action}: {d.reason}" for d in diff.unmeasured]
    losses = [f"{d.subject} loses {d.action} on {d.relation}: {d.lost} own row(s)" for d in diff.losses]
    if final:
        problems += losses
    note = "" if problems or not losses else f"{len(losses)} loss(es) in this intermediate state (access window)"
    return _v("access", criterion, stage, not problems, "; ".join(problems[:8]) or note,
              subjects=diff.subjects, relations=diff.relations, cells=diff.cells,
              differences=[asdict(d) for d in diff.differences if d.kind != "loss_other"][:40])


def judge_writer_blocks(stage: str, blocks: list[dict]) -> Verdict:
    """Statements that queued behind a writer for a lock that makes writers wait for a whole-table scan (a
    non-concurrent index build, a validation at once): a finding at any size. Brief strong locks (ADD COLUMN,
    CREATE POLICY) are listed as evidence; how long they were really held is judged from the lock samples
    and the synthetic writer's waits (a procedure that COMMITs inside releases them before its statement ends)."""
    bad = [b for b in blocks if b["mode"] in SCANNING_LOCKS]
    return _v("writer_blocks", "No statement makes writers wait for a scan of a pre-existing table", stage, not bad,
              "; ".join(f"statement {b['statement_index']} of {b['file']} takes {b['mode']} on {b['table']}: writers "
                        f"wait for the whole statement (up to {b['blocked_seconds']:.3f} s here, until {b['until']}; "
                        "an index built without CONCURRENTLY, or a constraint validated at once)" for b in bad[:5]),
              blocks=blocks)


def judge_strong_locks(stage: str, held: dict, interval_seconds: float, threshold_seconds: float,
                       pre_existing: list[str]) -> Verdict:
    """From the lock sampler: strong locks on pre-existing tables held longer than the threshold."""
    long_held = []
    # The sampler names relations without their schema (pg_class.relname).
    names = {t.split(".", 1)[-1]: t for t in pre_existing}
    for relation, modes in held.items():
        relation = names.get(relation, relation) if relation not in pre_existing else relation
        if relation not in pre_existing:
            continue
        for mode, samples in modes.items():
            seconds = samples * interval_seconds
            if mode in STRONG_LOCKS and seconds > threshold_seconds:
                long_held.append(f"{mode} on {relation} held about {seconds:.1f} s")
    return _v("strong_locks", "No strong lock on a pre-existing table held longer than the threshold", stage,
              not long_held, "; ".join(long_held), threshold_seconds=threshold_seconds)


def judge_duration(stage: str, seconds: float, rows: int, minutes: tuple[int, int], tenant_rows: int) -> Verdict:
    """The runbook's minutes scaled to the copy's rows; a row-by-row pattern flagged by its throughput."""
    budget = max(RUNBOOK_FLOOR_SECONDS, minutes[1] * 60 * tenant_rows / RUNBOOK_REFERENCE_ROWS)
    problems = []
    if seconds > budget:
        problems.append(f"took {seconds:.1f} s, over the runbook's {minutes[1]} min scaled to {tenant_rows} rows "
                        f"({budget:.1f} s)")
    rate = rows / seconds if seconds else None
    if seconds > ROW_BY_ROW_MIN_SECONDS and rows and rate is not None and rate < ROW_BY_ROW_ROWS_PER_SECOND:
        problems.append(f"{rows} rows in {seconds:.1f} s ({rate:.0f} rows/s): a row-by-row pattern (a statement or "
                        f"sub-transaction per row); set-based batches move ≥ {ROW_BY_ROW_ROWS_PER_SECOND} rows/s")
    return _v("duration", "Per-file time within the runbook's duration scaled to the rows", stage, not problems,
              "; ".join(problems), seconds=seconds, budget_seconds=round(budget, 1), rows=rows)


# --- after the forward files ------------------------------------------------------------------------------

def judge_contents(comparison: dict | None, skipped: dict, error: str = "") -> Verdict:
    criterion = "Row contents unchanged: every pre-existing column of every row, before vs after"
    stage = "after the forward files"
    if comparison is None:
        return _v("contents", criterion, stage, False, f"the contents could not be compared: {error}")
    problems = []
    for table, result in sorted(comparison.items()):
        if result.get("error"):
            problems.append(f"{table}: {result['error']}")
        elif result["rows_lost"] or result["rows_changed"]:
            problems.append(f"{table}: {result['rows_changed']} row(s) changed"
                            + (f" in {', '.join(result['columns_changed'])}" if result["columns_changed"] else "")
                            + (f", {result['rows_lost']} lost" if result["rows_lost"] else "")
                            + f", e.g. {', '.join(result['examples'][:3])}")
    problems += [f"{table}: not compared ({why})" for table, why in sorted(skipped.items())]
    return _v("contents", criterion, stage, not problems, "; ".join(problems), tables=comparison, skipped=skipped)


def judge_role_model(result: dict | None, promise: str, error: str = "") -> Verdict:
    criterion = f"Migrated memberships match the bundle's promise ({promise})"
    stage = "after the forward files"
    if result is None:
        return _v("role_model", criterion, stage, False, f"the memberships could not be read: {error}")
    problems = []
    if result["users_not_admin_of_exactly_one"]["count"]:
        r = result["users_not_admin_of_exactly_one"]
        problems.append(f"{r['count']} legacy user(s) not admin of exactly one organization, e.g. "
                        + ", ".join(r["examples"][:3]))
    if result["shared_organizations"]["count"]:
        r = result["shared_organizations"]
        problems.append(f"{r['count']} legacy user's organization(s) with other members, e.g. "
                        + ", ".join(r["examples"][:3]))
    return _v("role_model", criterion, stage, not problems, "; ".join(problems), **result)


def judge_check(key: str, criterion: str, passed: bool | None, message: str, stage: str = "after the forward files",
                blocking: bool = True, **evidence) -> Verdict:
    """A check whose own module judged it; None (it could not run) is not met, with the message as reason."""
    return _v(key, criterion, stage, bool(passed), message, blocking, **evidence)


def judge_writer_errors(stats: dict) -> Verdict:
    """Informational: the old app's writes refused during the forward files (the access window, say)."""
    failed = {stage: e["errors"] for stage, e in stats.get("by_stage", {}).items() if e["errors"]}
    return _v("writer_errors", "The old app's writes succeed during the transition", "forward", not failed,
              "; ".join(f"{n} of its writes failed during {stage}" for stage, n in failed.items())
              + (f" (e.g. {stats['errors'][0]})" if failed and stats.get("errors") else ""),
              blocking=False, errors=stats.get("errors", []))


def judge_writer_waits(stats: dict, threshold_seconds: float) -> Verdict:
    """The synthetic writer's measured waits during the forward files (max and p99) against the threshold."""
    criterion = "The old app's writes do not wait on the migration's locks (max over the threshold)"
    if stats.get("setup_error"):
        return _v("writer", criterion, "forward", False, f"the writer could not run: {stats['setup_error']}")
    if not stats.get("writes"):
        return _v("writer", criterion, "forward", False, "the writer made no write during the forward files")
    worst = max(stats["by_stage"].items(), key=lambda kv: kv[1]["max_ms"])
    # Judged by the writes that waited longer than the threshold *for a lock* (their lock_timeout fired): the
    # wall-clock max also counts a busy machine, so it is shown, not judged.
    blocked = stats.get("lock_waits_over_threshold") or []
    passed = not blocked
    message = (f"{len(blocked)} write(s) waited over {threshold_seconds * 1000:.0f} ms for a lock, during "
               + ", ".join(sorted(set(blocked))) + "; " if blocked else "")
    message += (f"{stats['writes']} writes to {stats['table']} as legacy user {stats['user_id']}: max "
                f"{stats['max_ms']:.0f} ms (during {worst[0]}), p99 {stats['p99_ms']:.0f} ms")
    return _v("writer", criterion, "forward", passed, message, writes=stats["writes"], max_ms=stats["max_ms"],
              p99_ms=stats["p99_ms"], by_stage=stats["by_stage"], errors=stats["errors"])

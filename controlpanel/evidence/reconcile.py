"""Reconciliation of two snapshots: no row lost, no row without an organization, every user a member.

Pure functions over snapshot dicts (``snapshots.collect_snapshot``); every difference names the rows
(ids, a limited sample) and not only a number.
"""

from controlpanel.targets.catalog import diff_fingerprints

from .snapshots import IDENTITY_SAMPLE


def _missing_and_added(before: dict, after: dict) -> dict:
    """Which ids disappeared or appeared: exact when both snapshots kept the ids, else per bucket."""
    if "ids" in before and "ids" in after:
        old, new = set(before["ids"]), set(after["ids"])
        lost, added = sorted(old - new), sorted(new - old)
        return {"exact": True, "lost": lost[:IDENTITY_SAMPLE], "lost_count": len(lost),
                "added": added[:IDENTITY_SAMPLE], "added_count": len(added)}
    old, new = before.get("buckets", {}), after.get("buckets", {})
    differing = sorted(b for b in set(old) | set(new) if old.get(b) != new.get(b))
    return {"exact": False, "differing_id_prefixes": [
        {"prefix": b, "before": (old.get(b) or [0])[0], "after": (new.get(b) or [0])[0]} for b in differing[:50]]}


def compare_counts(before: dict, after: dict) -> list[dict]:
    """Per table: counts before/after and, when they or the identities differ, which rows."""
    rows = []
    for table in sorted(before["counts"]):
        b = before["counts"][table]
        a = after["counts"].get(table)
        row = {"table": table, "before": b, "after": a, "difference": None if a is None else a - b}
        same_ids = before["identities"].get(table, {}).get("buckets") == \
            after.get("identities", {}).get(table, {}).get("buckets")
        row["unchanged"] = a == b and same_ids
        if not row["unchanged"] and a is not None:
            row["rows"] = _missing_and_added(before["identities"][table], after["identities"][table])
        if a is None:
            row["rows"] = {"exact": True, "lost_count": b, "lost": [], "note": "table missing after"}
        rows.append(row)
    return rows


def reconcile(before: dict, after: dict) -> dict:
    """The reconciliation verdict between the 'before' and 'after' snapshots (see module docstring)."""
    counts = compare_counts(before, after)
    tenancy = after.get("tenancy") or {}
    orphans = {t: v for t, v in (tenancy.get("rows_without_organization") or {}).items()
               if v["count"] or v.get("dangling", {}).get("count")}
    checks = [
        {"check": "every table's row count and identities unchanged",
         "passed": all(r["unchanged"] for r in counts),
         "detail": [r for r in counts if not r["unchanged"]]},
    ]
    if tenancy:
        checks += [
            {"check": "no tenant row without an organization", "passed": not orphans, "detail": orphans},
            {"check": "every user has an organization membership",
             "passed": tenancy["users_without_membership"]["count"] == 0,
             "detail": tenancy["users_without_membership"]},
            {"check": "every user has an active membership",
             "passed": tenancy["users_without_active_membership"]["count"] == 0,
             "detail": tenancy["users_without_active_membership"]},
        ]
    else:
        checks.append({"check": "organizations exist after the migration", "passed": False,
                       "detail": "the 'after' snapshot has no organizations table"})
    return {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "counts": counts,
        "distribution": tenancy.get("distribution", []),
        "assessment": {"before": before.get("assessment"), "after": after.get("assessment")},
    }


def compare_schema(before: dict, after: dict) -> list[str]:
    """Schema differences (e.g. the exact-rollback proof: empty between 'before' and 'after_rollback')."""
    return diff_fingerprints(before.get("fingerprint", {}), after.get("fingerprint", {}))


def compare_restored(before: dict, after: dict) -> dict:
    """The exact-rollback proof between 'before' and 'after_rollback': the same schema fingerprint, and
    every table of either snapshot with the same row count and row identities (a table present only
    afterwards is a difference too)."""
    diff = compare_schema(before, after)
    rows = compare_counts(before, after)
    rows += [{"table": table, "before": None, "after": count, "difference": None, "unchanged": False,
              "rows": {"note": "table missing before"}}
             for table, count in after.get("counts", {}).items() if table not in before["counts"]]
    rows.sort(key=lambda r: r["table"])
    rows_unchanged = all(r["unchanged"] for r in rows)
    return {
        "passed": not diff and rows_unchanged,
        "fingerprint_restored": not diff,
        "fingerprint_diff": diff,
        "counts_equal": all(r["before"] == r["after"] for r in rows),
        "rows_unchanged": rows_unchanged,
        "counts": rows,
    }


def _mb(n: float) -> str:
    return f"{n / 1048576:.1f} MB"


# Per pre-existing table, growth that page granularity and the free-space and visibility maps (created by the
# first UPDATE or VACUUM) cost whatever the migration does: 8 pages. Only matters on small tables.
SIZE_SLACK_PER_TABLE = 8 * 8192


def size_growth(before: dict, after: dict, budget_percent: float) -> dict:
    """The runbook's "< 10 % for schema changes", judged so that it separates a good migration from a bad one at
    every size: the pre-existing tables may grow by what their added columns need (measured width × rows) and
    by new indexes; new tables and new indexes are the migration's stated fixed cost. What the pre-existing
    tables grew *beyond* that (dead row versions of a single giant UPDATE, a rewrite, index bloat) is judged
    against the budget as a share of the tenant data before. The database growth is shown beside it."""
    def pct(b, a):
        return round((a - b) * 100.0 / b, 2) if b else None

    database = {"before": before["database_size"], "after": after["database_size"],
                "growth_percent": pct(before["database_size"], after["database_size"])}
    old, new = before.get("sizes", {}), after.get("sizes", {})
    tables, new_indexes = [], []
    tenant_before = excess = added_need = 0
    for table, b in sorted(old.items()):
        a = new.get(table)
        if not a:
            continue
        row = {"table": table, "before": b["total"], "after": a["total"],
               "growth_percent": pct(b["total"], a["total"])}
        if "main" in b and "main" in a:
            rows = after.get("counts", {}).get(table) or before.get("counts", {}).get(table) or 0
            added = [c for c in a["column_widths"] if c not in b["column_widths"]]
            width = sum(a["column_widths"][c] for c in added)
            indexes_new = {i: n for i, n in a["index_sizes"].items() if i not in b["index_sizes"]}
            new_indexes += [{"table": table, "index": i, "size": n} for i, n in sorted(indexes_new.items())]
            need = rows * width
            beyond = ((a["main"] - b["main"] - need) + (a["indexes"] - sum(indexes_new.values()) - b["indexes"])
                      + ((a["table"] - a["main"]) - (b["table"] - b["main"])))
            row |= {"added_columns": added, "added_bytes_per_row": round(width, 1), "added_need": need,
                    "new_indexes": sum(indexes_new.values()), "beyond_need": beyond}
            tenant_before += b["total"]
            excess += max(0, beyond - SIZE_SLACK_PER_TABLE)
            added_need += need
        tables.append(row)
    new_tables = [{"table": t, "size": new[t]["total"]} for t in sorted(set(new) - set(old))]
    fixed = sum(t["size"] for t in new_tables) + sum(i["size"] for i in new_indexes)
    if tenant_before:
        excess_percent = round(excess * 100.0 / tenant_before, 2)
        passed = excess_percent < budget_percent
        summary = (f"pre-existing tables ({_mb(tenant_before)}) grew {_mb(excess)} ({excess_percent} %) beyond what "
                   f"their added columns need ({_mb(added_need)}); budget {budget_percent} %. Stated fixed cost of "
                   f"new objects: {_mb(fixed)} ({len(new_tables)} table(s), {len(new_indexes)} index(es)); "
                   f"database {database['growth_percent']} %")
    else:  # snapshots taken before sizes were kept per fork: the database growth alone
        excess_percent = None
        passed = database["growth_percent"] is not None and database["growth_percent"] < budget_percent
        summary = f"database grew {database['growth_percent']} % (budget {budget_percent} %)"
    return {"budget_percent": budget_percent, "database": database, "tables": tables, "new_tables": new_tables,
            "new_indexes": new_indexes, "fixed_cost": fixed, "tenant_before": tenant_before,
            "beyond_need": excess, "beyond_need_percent": excess_percent, "summary": summary, "passed": passed}

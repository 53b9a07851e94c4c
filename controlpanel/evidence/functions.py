"""plpgsql_check's verdict on the functions and procedures a bundle creates: errors block, warnings inform."""

from controlpanel.targets.plpgsql import PlpgsqlCheckUnavailable, plpgsql_check_rows

from .lints import Finding


def check_functions(conn, created_oids_or_names) -> list[Finding]:
    """One Finding per plpgsql_check row (error → critical, performance/warning → low); a check that cannot
    run is a high finding with its reason, never silence. Run it on a copy: it creates the extension."""
    try:
        rows, _checked = plpgsql_check_rows(conn, created_oids_or_names)
    except PlpgsqlCheckUnavailable as exc:
        return [Finding("plpgsql_check_unavailable", "high", "extension plpgsql_check", str(exc),
                        "Install postgresql-15-plpgsql-check on the server that holds the copy.")]
    findings = []
    for row in rows:
        error = row.level == "error"
        where = f" at line {row.line}" if row.line else ""
        findings.append(Finding(
            "plpgsql_check_error" if error else "plpgsql_check_warning", "critical" if error else "low",
            f"function {row.function}",
            f"plpgsql_check {row.level}{where}: {row.message}" + (f" (in: {row.query[:120]})" if row.query else ""),
            "Fix the function body (qualify the column, rename the parameter) and re-run the check."))
    return findings

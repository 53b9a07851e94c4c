"""The access diff and the typical operations as the same users, before and after the bundle, side by side.

Clones the cached unmigrated 20,000-user / 1,000,000-report template (bench/common.py), measures the access map of
a stratified sample of users (ACCESS_SAMPLE_USERS, 200) plus anon / authenticated / service_role, times the typical
operations as a sample of the same users, applies the bundle with psql (MIGRATION_BUNDLE_DIR, default migrations_sql/),
measures again as the same subjects and prints the diff, the seconds per subject and each operation's after/before
ratio. Goals: the access map ≤ 60 s for 200 subjects; operations ≤ 1.5× and < 500 ms after.

    .venv/bin/python bench/bench_access.py [--reports 1000000] [--users 20000] [--subjects 200] [--timed-users 20]
"""

import argparse
import os
from collections import Counter

import common

common.setup_django()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

from controlpanel.evidence.access import diff_access, measure_access  # noqa: E402
from controlpanel.evidence.timing import compare_operations, typical_operations  # noqa: E402

WIDTH = 28


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--timed-users", type=int, default=20)
    args = parser.parse_args()
    results = {}
    template = common.target_template(args.users, args.reports, migrated=False)
    info = common.template_info(template)
    common.report_seconds("build + seed", sum(info.get("phases", {}).values()), results, WIDTH,
                          note=common.cached_note(info))

    def timed(label, fn):
        return common.timed(label, fn, results, WIDTH)

    with override_settings(ACCESS_SAMPLE_USERS=args.subjects), common.cloned(template, "cp_bench_access") as (
            name, dsn):
        def more():
            return psycopg.connect(dsn, autocommit=True)

        with psycopg.connect(dsn, autocommit=True) as conn:
            # The same map probed in one session and in ACCESS_PROBE_SESSIONS side by side: the ratio is printed.
            with override_settings(ACCESS_PROBE_SESSIONS=1):
                serial = timed("access map before, 1 session", lambda: measure_access(conn))
            before = timed("access map before", lambda: measure_access(conn, serial.subjects, connect=more))
            # the users of every stratum, heaviest first: the typical operations as the same people after
            users = [s.user_id for s in before.subjects if s.user_id][:args.timed_users]
            ops_before = timed("operations before", lambda: typical_operations(conn, users))
        timed("bundle (psql)", lambda: common.apply_bundle(name))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
            after = timed("access map after", lambda: measure_access(conn, before.subjects, connect=more))
            ops_after = timed("operations after", lambda: typical_operations(conn, users))
    diff = diff_access(before, after)
    subjects = len(before.subjects)
    print(f"\nbundle: {os.environ.get('MIGRATION_BUNDLE_DIR') or 'migrations_sql/'}")
    print(f"access map: {subjects} subjects, {len(before.relations)} -> {len(after.relations)} relations, "
          f"{len(before.cells)} -> {len(after.cells)} cells")
    same = diff_access(serial, before)
    print(f"  1 session {serial.seconds:.2f} s vs {settings.ACCESS_PROBE_SESSIONS} sessions {before.seconds:.2f} s: "
          f"{serial.seconds / max(before.seconds, 0.001):.2f}x faster; "
          f"same map: {same.passed and not same.differences}")
    for label, access in (("before", before), ("after", after)):
        print(f"  {label:<7} {access.seconds:8.2f} s  {access.seconds / max(subjects, 1):.3f} s per subject  "
              f"{sum(1 for c in access.cells if c.error)} cell(s) cannot measure")
    kinds = Counter(d.kind for d in diff.differences)
    print(f"diff: {dict(kinds)}")
    for d in diff.exposures[:5] + diff.losses[:5]:
        print(f"  {d.kind:<9} {d.subject[:41]:<42} {d.relation:<32} {d.action:<16} {d.before} -> {d.after} "
              f"(+{d.gained} / -{d.lost})")
    rows = compare_operations(ops_before, ops_after)
    print(f"\ntypical operations as the same {len(users)} users (median of 3 runs each; ratio = after / before):")
    print(f"  {'operation':<18} {'median ratio':>12} {'worst ratio':>12} {'worst after ms':>15}")
    for row in rows:
        print(f"  {row['key']:<18} {row['median_ratio']!s:>12} {row['worst_ratio']!s:>12} "
              f"{row['worst_after_ms']!s:>15}{'  ' + '; '.join(row['errors']) if row['errors'] else ''}")
    worst = max(after.seconds, before.seconds)
    common.headline("access", "access map, 200 subjects", f"before {before.seconds} s, after {after.seconds} s "
                    f"({worst / max(subjects, 1):.3f} s/subject)", "<= 60 s", worst <= 60)
    common.headline("access", "access diff", f"{len(diff.exposures)} exposures, {len(diff.losses)} losses, "
                    f"{len(diff.unmeasured)} cannot measure", "none", diff.passed)
    ratios = [r["worst_ratio"] for r in rows if r["worst_ratio"] is not None]
    slowest = max((r["worst_after_ms"] for r in rows if r["worst_after_ms"] is not None), default=None)
    common.headline("access", "typical operations after/before", f"worst ratio {max(ratios, default=None)}, "
                    f"worst after {slowest} ms", "<= 1.5x and < 500 ms",
                    bool(ratios) and max(ratios) <= 1.5 and slowest is not None and slowest < 500)


if __name__ == "__main__":
    main()

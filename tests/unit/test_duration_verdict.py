"""The rehearsal's per-file time: the runbook's minutes scaled to the rows, and row-by-row throughput flagged."""

from controlpanel.safety.verdicts import judge_duration

STEP = "after 20250904000003_migrate_existing_data_to_organizations.sql"


def test_a_set_based_backfill_within_the_scaled_minutes_is_met():
    verdict = judge_duration(STEP, seconds=31.0, rows=1_500_000, minutes=(5, 10), tenant_rows=1_500_000)
    assert verdict.passed and verdict.evidence["budget_seconds"] == 900.0


def test_a_row_by_row_backfill_is_named_by_its_throughput_even_within_the_minutes():
    # 20,000 reports with a sub-transaction each: 182 s (the team bundle of issue 13), well within 10 minutes.
    verdict = judge_duration(STEP, seconds=182.0, rows=20_000, minutes=(5, 10), tenant_rows=1_000_000)
    assert not verdict.passed and "row-by-row" in verdict.message and "110 rows/s" in verdict.message


def test_a_file_over_the_runbook_minutes_scaled_to_its_rows_is_not_met():
    verdict = judge_duration(STEP, seconds=100.0, rows=100_000, minutes=(5, 10), tenant_rows=100_000)
    assert not verdict.passed and "over the runbook's 10 min scaled to 100000 rows (60.0 s)" in verdict.message


def test_short_files_are_not_judged_for_throughput():
    assert judge_duration(STEP, seconds=2.0, rows=100, minutes=(5, 10), tenant_rows=2_000).passed

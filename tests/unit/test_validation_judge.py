"""The one judge of validation output (step executor and rehearsal): FAILED input must fail."""

from controlpanel.runbook.validation import judge, reports_failure

PASSING = [
    "Schema: PASS tables, columns, constraints",
    "RESULT: Schema tests PASSED",
    "RLS Policies: PASS RLS enabled",
    "RESULT: RLS Policies tests PASSED",
]


def test_all_passed_is_passed():
    verdict = judge(PASSING)
    assert verdict.passed and [c.name for c in verdict.categories] == ["Schema", "RLS Policies"]


def test_a_failed_category_fails_and_is_named():
    verdict = judge(PASSING[:2] + ["RLS Policies: FAIL user 2 sees 40 rows", "RESULT: RLS Policies tests FAILED"])
    assert not verdict.passed
    assert verdict.failed_categories == ["RLS Policies"]
    assert "Validation FAILED: RLS Policies" in verdict.message
    assert verdict.categories[1].details == ("RLS Policies: FAIL user 2 sees 40 rows",)


def test_every_category_failed_fails_each():
    notices = [line.replace("PASSED", "FAILED") for line in PASSING]
    assert judge(notices).failed_categories == ["Schema", "RLS Policies"]


def test_a_file_that_prints_passed_over_fail_details_is_caught():
    verdict = judge(["Data Migration: FAIL 20000 reports without organization", "RESULT: Data Migration tests PASSED"])
    assert not verdict.passed and verdict.failed_categories == ["Data Migration"]
    assert "printed PASSED despite FAIL details" in verdict.message


def test_no_result_lines_is_not_a_pass():
    assert judge(["hello"]).message == "The validation file printed no RESULT lines."


def test_the_bundles_own_failure_notice_fails_a_forward_file():
    verdict = judge([{"message": "Found 20000 audit reports without organization context", "severity": "WARNING"}],
                    expect_results=False)
    assert not verdict.passed and "Found 20000 audit reports" in verdict.message


def test_zero_offenders_and_progress_notices_are_not_failures():
    assert not reports_failure("Found 0 audit reports without organization context")
    assert not reports_failure("audit_reports: rows without organization_id remain, sweeping the table again")
    assert not reports_failure("lock not available for \"ALTER TABLE x\", retry 1 of 5")
    assert judge(["tenant tables busy (attempt 1 of 30), retrying"], expect_results=False).passed


def test_counted_offenders_in_other_words_are_failures():
    assert reports_failure("3 users without a membership")
    assert reports_failure("membership check failed for organization 7")

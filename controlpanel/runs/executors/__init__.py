"""One executor per step kind: a function (StepContext) -> result dict, raising StepFailed on failure.

A new kind of step is one function here and an entry in EXECUTORS.
"""

from controlpanel.runbook.definition import Kind

from .checklist import verify_checklist
from .commands import run_backup, run_command
from .reports import run_query_report
from .sql import run_backfill, run_sql_file, run_sql_tests
from .tables import run_table_action
from .workers import run_workers_check

EXECUTORS = {
    Kind.CHECKLIST: verify_checklist,
    Kind.BACKUP: run_backup,
    Kind.QUERY_REPORT: run_query_report,
    Kind.SQL_FILE: run_sql_file,
    Kind.BACKFILL: run_backfill,
    Kind.SQL_TESTS: run_sql_tests,
    Kind.COMMAND: run_command,
    Kind.WORKERS_CHECK: run_workers_check,
    Kind.TABLE_ACTION: run_table_action,
}

"""The runbook as data: every phase and step of the ProcessAudit multi-tenant migration runbook.

Pure Python, no Django models. Adding a step is adding a `Step` here and, at most, writing one executor
for a new kind in `controlpanel/runs/executors/`.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    CHECKLIST = "checklist"  # ticked by a person; some items verified by the panel
    BACKUP = "backup"  # pg_dump of the target taken by the panel
    QUERY_REPORT = "query_report"  # read-only queries whose results are kept as evidence
    SQL_FILE = "sql_file"  # one bundle file, statement by statement, one transaction where allowed
    BACKFILL = "backfill"  # the data migration file, with progress read from migration_progress
    SQL_TESTS = "sql_tests"  # the validation file; its NOTICEs parsed into PASSED/FAILED categories
    COMMAND = "command"  # a configured external command (e.g. a Workers deploy); manual sign-off if none
    WORKERS_CHECK = "workers_check"  # exercises the organization-aware functions as the service role
    TABLE_ACTION = "table_action"  # a partial-rollback action on one table or on the organization indexes


class Area(StrEnum):
    """Whom to call (runbook "Contacts and Escalation")."""

    DATABASE = "database"
    WORKERS = "workers"
    FRONTEND = "frontend"
    INFRASTRUCTURE = "infrastructure"


# Who may act on a step: permission codenames from controlpanel.core.roles.
ONCALL_ACTS = "operate_runs"
LEAD_ACTS = "lead_actions"


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    text: str
    # Name of a verifier in controlpanel/runs/verifiers.py; None means a person ticks it.
    verifier: str | None = None


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    kind: Kind
    minutes: tuple[int, int]  # the runbook's expected duration (low, high)
    area: Area = Area.DATABASE
    acts: str = ONCALL_ACTS
    requires: tuple[str, ...] = ()
    file: str | None = None  # bundle file name, for SQL kinds
    queries: tuple[tuple[str, str], ...] = ()  # (label, sql) for QUERY_REPORT
    items: tuple[ChecklistItem, ...] = ()
    command_name: str | None = None  # key of a configured StepCommand (admin); None -> manual
    changes_target: bool = False  # asks for a confirmation naming the target
    gated: bool = False  # production gates (staging passed, rehearsal, lead approval) apply
    advice: tuple[str, ...] = ()  # the runbook's troubleshooting advice when the step fails
    description: str = ""
    # The evidence snapshot taken when the step succeeds: "before", "after" or "after_rollback" (evidence app).
    snapshot: str | None = None

    @property
    def bundle_file(self) -> str:
        """The bundle file of an SQL step; asking a step without one is a mistake in the caller."""
        if self.file is None:
            raise ValueError(f"step {self.key} runs no bundle file")
        return self.file


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    steps: tuple[Step, ...]
    main_flow: bool = True  # False for rollback and maintenance actions run on demand


@dataclass(frozen=True)
class Task:
    """A post-migration task (Day 1, Week 1, Month 1), due a number of days after completion."""

    key: str
    text: str
    due_days: int


DATA_ASSESSMENT = (
    ("total_users", "SELECT COUNT(*) AS total_users FROM auth.users"),
    ("total_reports", "SELECT COUNT(*) AS total_reports FROM public.audit_reports"),
    ("total_jobs", "SELECT COUNT(*) AS total_jobs FROM public.automation_jobs"),
    ("total_automations", "SELECT COUNT(*) AS total_automations FROM public.generated_automations"),
)

POST_MIGRATION_VALIDATION = (
    ("organizations", "SELECT COUNT(*) AS organizations FROM public.organizations"),
    ("memberships", "SELECT COUNT(*) AS memberships FROM public.organization_memberships"),
    (
        "reports_by_context",
        "SELECT COALESCE(o.name, 'Personal') AS context, COUNT(*) AS reports "
        "FROM public.audit_reports ar LEFT JOIN public.organizations o ON ar.organization_id = o.id "
        "GROUP BY o.name ORDER BY reports DESC LIMIT 100",
    ),
)

SCHEMA_ADVICE = (
    '"Organizations table already exists": check whether the migration was partially run '
    "(the troubleshooting page shows the state); every bundle file is idempotent, so retry the step.",
    "Verify foreign key constraints: a NOT VALID constraint is validated at the end of the data step.",
    "A lock timeout means a long transaction holds a tenant table: find it in the lock view, wait or end it, "
    "then retry.",
)
RLS_ADVICE = (
    "Check auth.uid() availability in context (request.jwt.claims).",
    "Verify service_role has BYPASSRLS.",
    "Test policies with actual user tokens (the isolation probes on the evidence page).",
)
DATA_ADVICE = (
    "Check migration_progress (troubleshooting page): the data step resumes from the last committed batch.",
    "Re-run the step: it continues where it stopped.",
    "A user without an organization gets their own (their default): SELECT public.ensure_personal_organization(id) "
    "FROM auth.users; never add users to a shared organization by hand.",
)
WORKERS_ADVICE = (
    "Verify SUPABASE_SERVICE_KEY in the Workers environment.",
    "Check service role RLS policies (BYPASSRLS on service_role).",
    "Test the database connection from the Workers.",
)
PERFORMANCE_ADVICE = (
    "Check that the organization indexes were created and are valid.",
    "Run ANALYZE on the modified tables.",
    "Compare query plans on the evidence page (SLA timing keeps the plan of any slow query).",
)

PRE_MIGRATION = Phase(
    "pre",
    "Pre-migration checklist",
    (
        Step(
            "pre.backup",
            "Back up the database",
            Kind.BACKUP,
            (5, 15),
            description="pg_dump in custom format; size and checksum kept as evidence.",
        ),
        Step(
            "pre.environment",
            "Environment preparation",
            Kind.CHECKLIST,
            (5, 10),
            area=Area.INFRASTRUCTURE,
            items=(
                ChecklistItem("backup", "Backup production database", "backup_taken"),
                ChecklistItem("access", "Verify Supabase project access", "target_reachable"),
                ChecklistItem("service_key", "Confirm service role key availability", "service_key_present"),
                ChecklistItem("staging", "Test migration on staging environment", "staging_passed"),
                ChecklistItem("notify", "Notify users of maintenance window"),
            ),
        ),
        Step(
            "pre.code",
            "Code preparation",
            Kind.CHECKLIST,
            (5, 10),
            area=Area.FRONTEND,
            items=(
                ChecklistItem("frontend", "Frontend organization components deployed"),
                ChecklistItem("api", "API routes updated for organization context"),
                ChecklistItem("types", "TypeScript types available"),
                ChecklistItem("workers", "Workers code ready for deployment"),
            ),
        ),
        Step(
            "pre.assessment",
            "Data assessment",
            Kind.QUERY_REPORT,
            (1, 5),
            queries=DATA_ASSESSMENT,
            description="The runbook's assessment queries, plus the 'before' snapshot used for reconciliation.",
            snapshot="before",
        ),
    ),
)

STEP1 = Phase(
    "step1",
    "Step 1: Schema migration",
    (
        Step(
            "step1.schema",
            "Apply core schema changes",
            Kind.SQL_FILE,
            (5, 10),
            requires=("pre.backup", "pre.environment", "pre.code", "pre.assessment"),
            file="20250904000001_add_multi_tenant_organizations.sql",
            changes_target=True,
            gated=True,
            advice=SCHEMA_ADVICE,
        ),
        Step(
            "step1.rls",
            "Apply RLS policies",
            Kind.SQL_FILE,
            (5, 10),
            requires=("step1.schema",),
            file="20250904000002_add_organization_rls_policies.sql",
            changes_target=True,
            advice=RLS_ADVICE,
        ),
        Step(
            "step1.data",
            "Migrate existing data",
            Kind.BACKFILL,
            (5, 10),
            requires=("step1.rls",),
            file="20250904000003_migrate_existing_data_to_organizations.sql",
            changes_target=True,
            advice=DATA_ADVICE,
        ),
    ),
)

STEP2 = Phase(
    "step2",
    "Step 2: Validation testing",
    (
        Step(
            "step2.validate",
            "Run validation tests",
            Kind.SQL_TESTS,
            (10, 15),
            requires=("step1.data",),
            file="test-multi-tenant-migration.sql",
            advice=RLS_ADVICE + DATA_ADVICE,
        ),
    ),
)

STEP3 = Phase(
    "step3",
    "Step 3: Workers deployment",
    (
        Step(
            "step3.deploy",
            "Deploy Workers with organization support",
            Kind.COMMAND,
            (5, 10),
            area=Area.WORKERS,
            requires=("step2.validate",),
            command_name="workers_deploy",
            changes_target=False,
            advice=WORKERS_ADVICE,
        ),
        Step(
            "step3.check",
            "Test Workers database integration",
            Kind.WORKERS_CHECK,
            (1, 5),
            area=Area.WORKERS,
            requires=("step3.deploy",),
            advice=WORKERS_ADVICE,
        ),
    ),
)

STEP4 = Phase(
    "step4",
    "Step 4: Application deployment",
    (
        Step(
            "step4.deploy",
            "Deploy main application",
            Kind.COMMAND,
            (10, 15),
            area=Area.FRONTEND,
            requires=("step3.check",),
            command_name="app_deploy",
            description="Verify environment variables include SUPABASE_SERVICE_KEY; all existing ones unchanged.",
        ),
    ),
)

STEP5 = Phase(
    "step5",
    "Step 5: Post-migration validation",
    (
        Step(
            "step5.database",
            "Database validation",
            Kind.QUERY_REPORT,
            (2, 5),
            requires=("step4.deploy",),
            queries=POST_MIGRATION_VALIDATION,
            description="The runbook's validation queries, plus the 'after' snapshot and reconciliation.",
            advice=DATA_ADVICE,
            snapshot="after",
        ),
        Step(
            "step5.app",
            "Application testing",
            Kind.CHECKLIST,
            (5, 10),
            area=Area.FRONTEND,
            requires=("step4.deploy",),
            items=(
                ChecklistItem("login", "User can log in successfully"),
                ChecklistItem("audit_flow", "Process audit flow works end-to-end"),
                ChecklistItem("automation", "Automation generation works"),
                ChecklistItem("reports", "Reports are visible and accessible"),
                ChecklistItem("console", "No console errors in browser"),
            ),
        ),
        Step(
            "step5.workers",
            "Workers testing",
            Kind.WORKERS_CHECK,
            (1, 5),
            area=Area.WORKERS,
            requires=("step4.deploy",),
            advice=WORKERS_ADVICE,
        ),
    ),
)

ROLLBACK = Phase(
    "rollback",
    "Rollback procedures",
    (
        Step(
            "rollback.emergency",
            "Emergency rollback (deletes all organization data)",
            Kind.SQL_FILE,
            (5, 15),
            acts=LEAD_ACTS,
            file="rollback-multi-tenant-organizations.sql",
            changes_target=True,
            advice=SCHEMA_ADVICE,
            snapshot="after_rollback",
        ),
        Step(
            "rollback.rls_disable",
            "Temporarily disable RLS on one table",
            Kind.TABLE_ACTION,
            (1, 1),
            acts=LEAD_ACTS,
            changes_target=True,
            description="SECURITY EXPOSURE while disabled: every API role sees every row of the table.",
        ),
        Step(
            "rollback.rls_enable", "Re-enable RLS on one table", Kind.TABLE_ACTION, (1, 1), changes_target=True
        ),
        Step(
            "rollback.drop_indexes",
            "Drop non-critical organization indexes",
            Kind.TABLE_ACTION,
            (1, 5),
            acts=LEAD_ACTS,
            changes_target=True,
            advice=PERFORMANCE_ADVICE,
        ),
        Step(
            "rollback.create_indexes",
            "Re-create organization indexes (off-peak)",
            Kind.TABLE_ACTION,
            (1, 15),
            changes_target=True,
            advice=PERFORMANCE_ADVICE,
        ),
    ),
    main_flow=False,
)

PHASES = (PRE_MIGRATION, STEP1, STEP2, STEP3, STEP4, STEP5, ROLLBACK)

POST_MIGRATION_TASKS = (
    Task("day1.performance", "Monitor application performance and error rates", 1),
    Task("day1.access", "Verify user authentication and data access", 1),
    Task("day1.workers", "Check Workers processing organization context", 1),
    Task("day1.pool", "Review database connection pool usage", 1),
    Task("week1.queries", "Analyze query performance with real usage patterns", 7),
    Task("week1.indexes", "Optimize indexes based on actual query patterns", 7),
    Task("week1.ui", "Implement organization-specific features in UI", 7),
    Task("week1.support", "Train support team on organization concepts", 7),
    Task("month1.adoption", "Review organization adoption metrics", 30),
    Task("month1.optimize", "Optimize database based on usage patterns", 30),
    Task("month1.features", "Implement advanced organization features", 30),
    Task("month1.custom", "Plan for organization-specific customizations", 30),
)


@dataclass(frozen=True)
class Runbook:
    phases: tuple[Phase, ...] = PHASES
    tasks: tuple[Task, ...] = POST_MIGRATION_TASKS
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        for phase in self.phases:
            for step in phase.steps:
                if step.key in self._index:
                    raise ValueError(f"duplicate step key {step.key}")
                self._index[step.key] = (phase, step)
        for _, step in self._index.values():
            for required in step.requires:
                if required not in self._index:
                    raise ValueError(f"{step.key} requires unknown step {required}")

    def step(self, key: str) -> Step:
        try:
            return self._index[key][1]
        except KeyError:
            raise KeyError(f"unknown step {key!r}; `manage.py runbook steps` lists them") from None

    def phase_of(self, key: str) -> Phase:
        return self._index[key][0]

    def all_steps(self) -> list[Step]:
        return [step for phase in self.phases for step in phase.steps]

    def main_steps(self) -> list[Step]:
        """Steps of the forward runbook, in order (pre-migration checklist to post-migration validation)."""
        return [step for phase in self.phases if phase.main_flow for step in phase.steps]

    def bundle_files(self) -> list[str]:
        """Every bundle file a run pins the checksum of."""
        return [step.file for step in self.all_steps() if step.file]

    def of_kind(self, *kinds: Kind, main_flow: bool | None = None) -> list[Step]:
        return [step for phase in self.phases for step in phase.steps
                if step.kind in kinds and (main_flow is None or phase.main_flow == main_flow)]

    def forward_steps(self) -> list[Step]:
        """The steps that run the forward bundle files (Step 1), in order: what "the migration scripts" means."""
        return self.of_kind(Kind.SQL_FILE, Kind.BACKFILL, main_flow=True)

    def forward_keys(self) -> tuple[str, ...]:
        return tuple(step.key for step in self.forward_steps())

    def validation_step(self) -> Step:
        """The step that runs the validation file (its NOTICEs judged by runbook/validation.py)."""
        return self._only(self.of_kind(Kind.SQL_TESTS), "validation")

    def emergency_rollback_step(self) -> Step:
        return self._only(self.of_kind(Kind.SQL_FILE, main_flow=False), "emergency rollback")

    def snapshot_steps(self) -> dict[str, str]:
        """step key -> the evidence snapshot its success records."""
        return {step.key: step.snapshot for step in self.all_steps() if step.snapshot}

    @staticmethod
    def _only(steps: list[Step], what: str) -> Step:
        if len(steps) != 1:
            raise ValueError(f"the runbook must have exactly one {what} step, found {len(steps)}")
        return steps[0]


RUNBOOK = Runbook()

"""The security model of a target, read once from its catalog into typed records (the lints judge them, pure).

`read_security_model(conn)` returns tables (RLS flags, API privileges, columns), policies (expression text as
pg_policies deparses it), functions (language, SECURITY DEFINER, config, body, who may execute), views (their
base relations, readers, security_invoker), indexes and foreign keys of the schemas that matter (public, auth).
"""

from dataclasses import dataclass, field

API_ROLES = ("anon", "authenticated")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    rls: bool
    columns: tuple[str, ...]
    api_privileges: dict = field(default_factory=dict, hash=False, compare=False)  # role -> "read/write"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Policy:
    schema: str
    table: str
    name: str
    cmd: str  # SELECT / INSERT / UPDATE / DELETE / ALL
    roles: tuple[str, ...]
    qual: str | None
    with_check: str | None
    permissive: bool

    @property
    def label(self) -> str:
        return f"policy {self.name} on {self.schema}.{self.table}"

    @property
    def for_api(self) -> bool:
        return any(r in ("public", *API_ROLES) for r in self.roles)


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    signature: str  # schema.name(identity args)
    kind: str  # f / p
    language: str
    security_definer: bool
    config: tuple[str, ...]
    source: str
    executable_by: tuple[str, ...]  # API roles that hold EXECUTE
    volatility: str

    @property
    def fixed_search_path(self) -> bool:
        return any(c.startswith("search_path=") for c in self.config)


@dataclass(frozen=True)
class View:
    schema: str
    name: str
    security_invoker: bool
    bases: tuple[str, ...]  # schema.name of the relations it reads
    readers: tuple[str, ...]  # API roles with SELECT


@dataclass(frozen=True)
class Index:
    table: str  # schema.name
    name: str
    valid: bool
    key: str  # indkey + expressions + predicate + uniqueness: equal keys are duplicates
    leading: tuple[str, ...]  # column names in index order (expressions: "")
    definition: str


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    columns: tuple[str, ...]
    references: str


@dataclass(frozen=True)
class SecurityModel:
    tables: tuple[Table, ...]
    policies: tuple[Policy, ...]
    functions: tuple[Function, ...]
    views: tuple[View, ...]
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    api_roles: tuple[str, ...]

    def table(self, qualified: str) -> Table | None:
        return next((t for t in self.tables if t.qualified == qualified), None)

    def functions_named(self, name: str) -> list[Function]:
        """By bare or schema-qualified name."""
        return [f for f in self.functions if name in (f.name, f"{f.schema}.{f.name}")]


SCHEMAS = ["public", "auth"]


def read_security_model(conn) -> SecurityModel:
    roles = tuple(r[0] for r in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", (list(API_ROLES),)).fetchall())
    tables = []
    for schema, name, rls, columns, privileges in conn.execute(
        """
        SELECT n.nspname, c.relname, c.relrowsecurity,
               ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                     AND NOT a.attisdropped ORDER BY a.attnum),
               ARRAY(SELECT r || ':' || concat_ws('/',
                         CASE WHEN has_table_privilege(r, c.oid, 'SELECT') THEN 'read' END,
                         CASE WHEN has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE') THEN 'write' END)
                     FROM unnest(%(roles)s::text[]) r
                     WHERE has_table_privilege(r, c.oid, 'SELECT, INSERT, UPDATE, DELETE'))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p')
        ORDER BY 1, 2
        """, {"roles": list(roles), "schemas": SCHEMAS}).fetchall():
        tables.append(Table(schema, name, rls, tuple(columns),
                            dict(p.split(":", 1) for p in privileges)))
    policies = [Policy(s, t, n, cmd, tuple(r), q, w, perm == "PERMISSIVE") for s, t, n, cmd, r, q, w, perm in
                conn.execute(
        """
        SELECT schemaname, tablename, policyname, cmd, roles::text[], qual, with_check, permissive
        FROM pg_policies WHERE schemaname = ANY(%s) ORDER BY 1, 2, 3
        """, (SCHEMAS,)).fetchall()]
    functions = [Function(schema, name, signature, kind, language, definer, config, source, tuple(executable),
                          volatility)
                 for schema, name, signature, kind, language, definer, config, source, executable, volatility
                 in conn.execute(
        """
        SELECT n.nspname, p.proname,
               n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               p.prokind::text, l.lanname, p.prosecdef, coalesce(p.proconfig, '{}'), coalesce(p.prosrc, ''),
               ARRAY(SELECT r FROM unnest(%(roles)s::text[]) r WHERE has_function_privilege(r, p.oid, 'EXECUTE')),
               p.provolatile::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e')
        ORDER BY 3
        """, {"roles": list(roles), "schemas": SCHEMAS}).fetchall()]
    views = [View(s, n, inv, tuple(b), tuple(r)) for s, n, inv, b, r in conn.execute(
        """
        SELECT n.nspname, v.relname,
               coalesce(v.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on',
                                                       'security_invoker=1'], false),
               ARRAY(SELECT DISTINCT tn.nspname || '.' || t.relname
                     FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                          AND d.refclassid = 'pg_class'::regclass
                     JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
                     JOIN pg_namespace tn ON tn.oid = t.relnamespace
                     WHERE rw.ev_class = v.oid ORDER BY 1),
               ARRAY(SELECT r FROM unnest(%(roles)s::text[]) r WHERE has_table_privilege(r, v.oid, 'SELECT'))
        FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace
        WHERE n.nspname = 'public' AND v.relkind IN ('v', 'm')
        ORDER BY 1, 2
        """, {"roles": list(roles)}).fetchall()]
    indexes = [Index(t, i, valid, key, tuple(lead), d) for t, i, valid, key, lead, d in conn.execute(
        """
        SELECT n.nspname || '.' || t.relname, i.relname, x.indisvalid,
               x.indkey::text || '|' || coalesce(pg_get_expr(x.indexprs, x.indrelid), '') || '|'
                 || coalesce(pg_get_expr(x.indpred, x.indrelid), '') || '|' || x.indisunique::text
                 || '|' || i.relam::text,
               ARRAY(SELECT coalesce(a.attname::text, '') FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, o)
                     LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.o),
               pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = ANY(%s)
        ORDER BY 1, 2
        """, (SCHEMAS,)).fetchall()]
    foreign_keys = [ForeignKey(t, n, tuple(c), r) for t, n, c, r in conn.execute(
        """
        SELECT n.nspname || '.' || t.relname, co.conname,
               ARRAY(SELECT a.attname::text FROM unnest(co.conkey) WITH ORDINALITY k(attnum, o)
                     JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum ORDER BY k.o),
               co.confrelid::regclass::text
        FROM pg_constraint co JOIN pg_class t ON t.oid = co.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE co.contype = 'f' AND n.nspname = 'public'
        ORDER BY 1, 2
        """).fetchall()]
    if not conn.autocommit:
        conn.rollback()
    return SecurityModel(tuple(tables), tuple(policies), tuple(functions), tuple(views), tuple(indexes),
                         tuple(foreign_keys), roles)

"""The access diff: which rows each subject can reach, before vs after — evidence that no one gains or loses access.

Interface (stable; the rehearsal calls ``access_checkpoint`` on its copy after each forward file):

    choose_subjects(conn) -> list[Subject]
    measure_access(conn, subjects=None, connect=None) -> AccessMap  # subjects None: choose_subjects(conn);
        # connect: opens another connection, for ACCESS_PROBE_SESSIONS users probed side by side
    diff_access(before: AccessMap, after: AccessMap) -> AccessDiff
    access_checkpoint(conn, before: AccessMap | None, connect=None) -> Checkpoint
        # before None: measures and returns the "before" map (subjects chosen once, stored with it);
        # otherwise measures the same subjects again and diffs: Checkpoint(map, diff), diff.passed.

``conn`` is a psycopg 3 connection in autocommit mode as a role that may ``SET ROLE`` to the API roles (Supabase's
``postgres``). Everything happens in one transaction that is always rolled back, each probe in its own savepoint
with ``ACCESS_PROBE_TIMEOUT_MS``: the target is left as it was, and a probe the bundle's SQL breaks (a recursive
policy, a raising trigger, a timeout) becomes a "cannot measure" cell, which no verdict counts as met.
Maps and diffs are dataclasses that round-trip JSON (``as_dict`` / ``from_dict``): they are stored in the control DB.

What is measured, per subject × relation × action. Relations: every table and view of the exposed schemas
(``ACCESS_EXPOSED_SCHEMAS``) that has RLS or a grant to an API role, from the catalog; a row's identity is its
primary key (a view or table without one: md5 of the whole row). Subjects: every user when there are at most
``ACCESS_ALL_USERS_UP_TO``, else a stratified sample of ``ACCESS_SAMPLE_USERS`` (most rows, fewest rows, no rows,
several memberships, the rest by a fixed hash order), plus ``anon``, ``authenticated`` without a user and
``service_role``. Impersonation is Supabase's (impersonation.as_role). Actions:

- read: the keys the subject can SELECT;
- update: the keys it can target with an UPDATE — ``SELECT … FOR UPDATE`` applies the SELECT and UPDATE
  policies' USING without writing (a no-op UPDATE of every reachable row would write a new version of each:
  bloat that distorts the size evidence, and triggers firing); WITH CHECK is probed by update_moves;
- delete: the keys ``DELETE … RETURNING`` removes (savepoint rolled back);
- insert_as_other / update_moves: the owner-ish columns (single-column foreign keys to auth.users or to an
  organization table, both found in the FK graph) for which a copy of the subject's own row (a real row, so the
  installation's constraints hold), or that row itself, can be attributed to another user / organization.

Writes are a subset of reads (RETURNING and FOR UPDATE apply the SELECT policies), so a write probe only runs
where something is readable, and on at most ``KEY_LIMIT`` readable keys (the read cell's sample) to stay bounded.
A cell keeps count and digest of the whole set and its keys in md5 order up to ``KEY_LIMIT``; beyond that, the
``horizon`` (md5 of the last key kept) says up to where the kept keys are complete (a bottom-k sample), so two
cells compare exactly below the smaller horizon and by their counts above it. Rows "tied" to a subject (a user
column equal to it, its organizations' rows found through membership tables) are told apart: on relations that did
not exist before, a subject may reach only rows tied to itself.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import psycopg
from django.conf import settings
from psycopg import sql

from controlpanel.targets.catalog import USERS_TABLE, ExposedRelation, exposed_relations
from controlpanel.targets.connection import TargetUnavailable

from .impersonation import as_role, error_text, rolled_back, sqlstate

Connect = Callable[[], psycopg.Connection]  # opens one more connection to the same target (autocommit)
KEY_LIMIT = 250  # keys kept per cell (bottom-k by md5): exact comparisons up to here, counts beyond
EXAMPLES = 20  # example keys per difference
ACTIONS = ("read", "update", "delete", "insert_as_other", "update_moves")
API_SUBJECTS = (("anon", "anon"), ("authenticated", "authenticated"), ("service_role", "service_role"))
PRIVILEGE = {"read": "SELECT", "update": "UPDATE", "delete": "DELETE", "insert_as_other": "INSERT",
             "update_moves": "UPDATE"}
# The installation refusing a write (privilege, RLS, a constraint, a trigger's RAISE) is an answer, not a failure.
REFUSED_CLASSES = ("42501", "23", "22", "P0001")


def _setting(name, default):
    return getattr(settings, name, default)


def _md5(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()


# --- records ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    key: str  # "user:<uuid>", "anon", "authenticated", "service_role"
    role: str
    user_id: str | None = None
    stratum: str = ""  # why this user is in the sample


@dataclass
class Cell:
    subject: str
    relation: str
    action: str
    count: int = 0
    digest: str = ""
    keys: list[str] = field(default_factory=list)  # md5 order; complete up to `horizon` (None: all of them)
    horizon: str | None = None
    untied: int = 0  # keys not tied to the subject
    untied_mask: str = ""  # "1" per kept key that is not tied to the subject (compact: no second key list)
    sampled: bool = False  # a write probed on the read cell's kept keys only
    error: str = ""  # "cannot measure: …"
    note: str = ""

    @property
    def ident(self) -> tuple[str, str, str]:
        return self.subject, self.relation, self.action

    @property
    def untied_keys(self) -> list[str]:
        return [k for k, flag in zip(self.keys, self.untied_mask, strict=False) if flag == "1"]


@dataclass
class AccessMap:
    schemas: list[str] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    relations: list[dict] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> AccessMap:
        return cls(schemas=list(data.get("schemas", [])), subjects=[Subject(**s) for s in data.get("subjects", [])],
                   relations=list(data.get("relations", [])), cells=[Cell(**c) for c in data.get("cells", [])],
                   error=data.get("error", ""), seconds=data.get("seconds", 0.0))


@dataclass
class Difference:
    subject: str
    relation: str
    action: str
    # "exposure" (a gain of rows not the subject's own), "gain_own" (more over its own rows: shown, not blocking),
    # "attribution" (an own-organization row's user column can be set to another member: shown, not blocking),
    # "loss" (own rows, or service_role's), "loss_other" (e.g. a leak closed), "cannot_measure"
    kind: str
    before: int | None = None
    after: int | None = None
    gained: int = 0
    lost: int = 0
    exact: bool = True  # False: beyond the kept keys only the counts were compared ("at least")
    new_relation: bool = False
    gained_examples: list[str] = field(default_factory=list)
    lost_examples: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class AccessDiff:
    subjects: int = 0
    relations: int = 0
    cells: int = 0
    differences: list[Difference] = field(default_factory=list)
    error: str = ""

    @property
    def exposures(self) -> list[Difference]:
        return [d for d in self.differences if d.kind == "exposure"]

    @property
    def losses(self) -> list[Difference]:
        return [d for d in self.differences if d.kind == "loss"]

    @property
    def unmeasured(self) -> list[Difference]:
        return [d for d in self.differences if d.kind == "cannot_measure"]

    @property
    def no_gain(self) -> bool:
        return not self.error and self.cells > 0 and not self.exposures and not self.unmeasured

    @property
    def no_loss(self) -> bool:
        return not self.error and self.cells > 0 and not self.losses and not self.unmeasured

    @property
    def passed(self) -> bool:
        return self.no_gain and self.no_loss

    def as_dict(self) -> dict:
        data = json.loads(json.dumps(asdict(self)))
        data.update(exposures=len(self.exposures), losses=len(self.losses), unmeasured=len(self.unmeasured),
                    no_gain=self.no_gain, no_loss=self.no_loss, passed=self.passed)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AccessDiff:
        return cls(subjects=data.get("subjects", 0), relations=data.get("relations", 0), cells=data.get("cells", 0),
                   differences=[Difference(**d) for d in data.get("differences", [])], error=data.get("error", ""))


@dataclass
class Checkpoint:
    map: AccessMap
    diff: AccessDiff | None = None


# --- SQL pieces -----------------------------------------------------------------------------------------

def _key_expr(rel: ExposedRelation) -> sql.Composable:
    if not rel.key:
        return sql.SQL("left(md5(to_jsonb(t)::text), 16)")  # 64 bits name a row among a view's rows
    parts = [sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in rel.key]
    return parts[0] if len(parts) == 1 else sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(parts))


def _tied_expr(rel: ExposedRelation) -> sql.Composable:
    """Rows tied to the subject: %(uid)s is its user id, %(orgs)s its organizations (text)."""
    if rel.kind == "view":  # a view has no foreign keys: any column carrying the subject or its organizations
        return sql.SQL("EXISTS (SELECT 1 FROM jsonb_each_text(to_jsonb(t)) e "
                       "WHERE e.value = %(uid)s OR e.value = ANY(%(orgs)s::text[]))")
    parts = [sql.SQL("t.{}::text = %(uid)s").format(sql.Identifier(c)) for c in rel.user_columns]
    if rel.is_organization_table and rel.key:
        parts.append(sql.SQL("t.{}::text = ANY(%(orgs)s::text[])").format(sql.Identifier(rel.key[0])))
    if not rel.user_columns:
        parts += [sql.SQL("t.{}::text = ANY(%(orgs)s::text[])").format(sql.Identifier(c))
                  for c in rel.organization_columns]
    return sql.SQL("coalesce({}, false)").format(sql.SQL(" OR ").join(parts) if parts else sql.SQL("false"))


def _owned_where(rel: ExposedRelation) -> sql.Composable:
    """The subject's own rows as a typed condition the owner column's index serves (session-role lookups)."""
    types = dict(rel.owner_types)
    parts = [sql.SQL("t.{} = CAST(%(uid)s AS {})").format(sql.Identifier(c), sql.SQL(types[c]))
             for c in rel.user_columns]
    if not rel.user_columns:
        parts += [sql.SQL("t.{} = ANY(CAST(%(orgs)s AS {}[]))").format(sql.Identifier(c), sql.SQL(types[c]))
                  for c in rel.organization_columns]
    if not parts:
        return _tied_expr(rel)
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def _domain(rel: ExposedRelation) -> sql.Composable:
    """Restricts a write probe to %(domain)s, the read cell's kept keys (typed, so the key's index serves)."""
    if len(rel.key) == 1:
        return sql.SQL("t.{} = ANY(%(domain)s::{}[])").format(sql.Identifier(rel.key[0]), sql.SQL(rel.key_types[0]))
    return sql.SQL("{} = ANY(%(domain)s::text[])").format(_key_expr(rel))


_SUMMARY = sql.SQL("""
SELECT (SELECT count(*) FROM r),
       (SELECT coalesce(sum(('x' || left(md5(k), 15))::bit(60)::bigint), 0) FROM r)::text,
       ARRAY(SELECT k FROM r ORDER BY md5(k), k LIMIT {limit}),
       (SELECT count(*) FROM r WHERE NOT tied),
       ARRAY(SELECT NOT tied FROM r ORDER BY md5(k), k LIMIT {limit})
""").format(limit=sql.Literal(KEY_LIMIT + 1))


def _set_query(rel: ExposedRelation, action: str, restricted: bool) -> sql.Composed:
    where = sql.SQL(" WHERE {}").format(_domain(rel)) if restricted else sql.SQL("")
    columns = sql.SQL("{} AS k, {} AS tied").format(_key_expr(rel), _tied_expr(rel))
    if action == "delete":
        source = sql.SQL("WITH r AS (DELETE FROM {rel} AS t{where} RETURNING {cols}) ")
    else:
        lock = sql.SQL(" FOR UPDATE OF t") if action == "update" else sql.SQL("")
        source = sql.SQL("WITH r AS MATERIALIZED (SELECT {cols} FROM {rel} AS t{where}{lock}) ")
    return source.format(rel=rel.ident, where=where, cols=columns, lock=lock if action != "delete" else sql.SQL(
        "")) + _SUMMARY


def _refused(exc) -> bool:
    state = sqlstate(exc)
    return any(state.startswith(prefix) for prefix in REFUSED_CLASSES)


# --- measuring --------------------------------------------------------------------------------------------

class _Target:
    """What the probes need beyond the relations, read once as the session role."""

    def __init__(self, conn, relations: list[ExposedRelation]):
        self.relations = relations
        self.roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                                 ([role for _, role in API_SUBJECTS],))}
        self.memberships = [r for r in relations if r.is_membership_table]
        org_tables = [r for r in relations if r.is_organization_table and r.key]
        self.organizations = [row[0] for rel in org_tables for row in conn.execute(
            sql.SQL("SELECT {}::text FROM {} ORDER BY 1 LIMIT 100").format(sql.Identifier(rel.key[0]), rel.ident))]
        self.users = [r[0] for r in conn.execute(
            sql.SQL("SELECT id::text FROM {} ORDER BY id LIMIT 2").format(sql.Identifier(*USERS_TABLE.split("."))))]
        self._privileges: dict[tuple, bool] = {}
        self.views: dict[tuple, tuple | str] = {}

    def privileged(self, conn, role: str, rel: ExposedRelation, action: str) -> bool:
        key = (role, rel.name, action)
        if key not in self._privileges:
            check = "has_table_privilege" if action == "delete" else "has_any_column_privilege"  # DELETE: no columns
            self._privileges[key] = conn.execute(sql.SQL("SELECT {}(%s, %s::regclass, %s)").format(
                sql.Identifier(check)), (role, rel.name, PRIVILEGE[action])).fetchone()[0]
        return self._privileges[key]

    def ties(self, conn, subject: Subject) -> dict:
        """The subject's user id and organizations, as the session role sees them (the truth, not RLS's view)."""
        orgs: list[str] = []
        if subject.user_id:
            for rel in self.memberships:
                for ucol in rel.user_columns:
                    for ocol in rel.organization_columns:
                        orgs += [r[0] for r in conn.execute(
                            sql.SQL("SELECT DISTINCT {}::text FROM {} WHERE {} = CAST(%s AS {})").format(
                                sql.Identifier(ocol), rel.ident, sql.Identifier(ucol),
                                sql.SQL(dict(rel.owner_types)[ucol])), (subject.user_id,))]
        return {"uid": subject.user_id, "orgs": sorted(set(orgs))}

    def other_value(self, rel: ExposedRelation, column: str, ties: dict) -> str | None:
        pool = self.users if column in rel.user_columns else self.organizations
        mine = {ties["uid"], *ties["orgs"]}
        return next((v for v in pool if v not in mine), None)


def _fill(cell: Cell, row, horizon: str | None = None) -> Cell:
    count, digest, keys, untied, flags = row
    cell.count, cell.digest, cell.untied = count, digest, untied
    cell.keys, cell.horizon = keys[:KEY_LIMIT], horizon
    if len(keys) > KEY_LIMIT:
        cell.horizon = min(filter(None, [horizon, _md5(cell.keys[-1])]))
    cell.untied_mask = "".join("1" if f else "0" for f in flags[:KEY_LIMIT])
    return cell


def _probe(conn, statement, params):
    """One probe in its own savepoint (rolled back): a failure neither aborts nor hides the next one. Probe
    sessions measured side by side lock rows only for one statement each; a deadlock between them is retried."""
    for attempt in range(3):
        try:
            with conn.transaction(force_rollback=True):
                return conn.execute(statement, params).fetchone()
        except psycopg.errors.DeadlockDetected:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _view_rows(conn, rel: ExposedRelation) -> tuple:
    """A caller-independent view, read once per role: (count, digest, kept keys, every row's key and values)."""
    key = _key_expr(rel)
    summary = conn.execute(sql.SQL(
        "WITH r AS MATERIALIZED (SELECT {} AS k FROM {} AS t) SELECT (SELECT count(*) FROM r), "
        "(SELECT coalesce(sum(('x' || left(md5(k), 15))::bit(60)::bigint), 0) FROM r)::text, "
        "ARRAY(SELECT k FROM r ORDER BY md5(k), k LIMIT {})").format(key, rel.ident, sql.Literal(KEY_LIMIT + 1))
    ).fetchone()
    values: dict[str, set[str]] = {}
    for k, row_values in conn.execute(sql.SQL("SELECT {}, ARRAY(SELECT value FROM jsonb_each_text(to_jsonb(t))) "
                                              "FROM {} AS t").format(key, rel.ident)):
        for value in row_values:
            values.setdefault(value, set()).add(k)
    return (*summary, values)


def _from_view_rows(cell: Cell, rows: tuple, ties: dict) -> Cell:
    count, digest, keys, values = rows
    tied = set().union(*(values.get(v, set()) for v in [ties["uid"], *ties["orgs"]] if v))
    flags = [k not in tied for k in keys]
    return _fill(cell, (count, digest, keys, count - len(tied), flags))


def _measure_set(conn, subject: Subject, rel: ExposedRelation, action: str, ties: dict, read: Cell | None,
                 target: _Target) -> Cell:
    cell = Cell(subject.key, rel.name, action)
    if not target.privileged(conn, subject.role, rel, action):
        cell.note = f"no {PRIVILEGE[action]} privilege"
        return cell
    if rel.same_for_every_caller and action == "read":
        # The same rows for every caller of a role (owner's rights, nothing caller-dependent): read them once.
        cache = (subject.role, rel.name)
        if cache not in target.views:
            try:
                with conn.transaction(force_rollback=True):
                    target.views[cache] = _view_rows(conn, rel)
            except psycopg.Error as exc:
                target.views[cache] = f"cannot measure: {error_text(exc)}"
        cached = target.views[cache]
        if isinstance(cached, str):
            cell.error = cached
            return cell
        cell.note = "a view with the same rows for every caller of this role: read once per role"
        return _from_view_rows(cell, cached, ties)
    restricted = False
    if read is not None:
        if read.error:
            cell.error = "cannot measure: the read probe failed"
            return cell
        if read.count == 0:
            cell.note = "nothing readable (these writes return rows, so they need SELECT)"
            return cell
        restricted = read.horizon is not None
    params = ties | {"domain": read.keys if restricted and read is not None else None}
    try:
        row = _probe(conn, _set_query(rel, action, restricted), params)
    except psycopg.Error as exc:
        if action == "delete" and sqlstate(exc).startswith("23"):
            # A foreign key without ON DELETE refuses the statement as a whole: the subject can delete none of it.
            cell.note = f"refused by a constraint: {error_text(exc)}"
            return cell
        cell.error = f"cannot measure: {error_text(exc)}"
        return cell
    cell.sampled = restricted
    if restricted and read is not None:
        cell.note = f"probed on the {len(read.keys)} kept keys of {read.count} readable"
    return _fill(cell, row, read.horizon if restricted and read is not None else None)


def _own_row(conn, rel: ExposedRelation, ties: dict) -> dict | None:
    """One row of the subject's own (any row when it has none), as JSON, read as the session role."""
    conditions: list[sql.Composable]
    if not ties["uid"] and not ties["orgs"]:
        conditions = [sql.SQL("true")]
    else:
        conditions = [_owned_where(rel), sql.SQL("true")]
    for condition in conditions:
        row = conn.execute(sql.SQL("SELECT to_jsonb(t) FROM {} AS t WHERE {} LIMIT 1").format(
            rel.ident, condition), ties).fetchone()
        if row:
            return row[0]
    return None


def _as_subject(rel: ExposedRelation, row: dict, ties: dict) -> dict:
    """The copied row attributed to the subject (so that only the probed column differs)."""
    out = dict(row)
    for column in rel.user_columns:
        if ties["uid"]:
            out[column] = ties["uid"]
    for column in rel.organization_columns:
        if ties["orgs"] and out.get(column) not in ties["orgs"]:
            out[column] = ties["orgs"][0]
    return out


def _insert_statement(rel: ExposedRelation, data: dict) -> tuple[sql.Composed, str] | None:
    row = dict(data)
    for column, type_ in zip(rel.key, rel.key_types, strict=True):
        if column in rel.user_columns or column in rel.organization_columns:
            continue  # the key is the owner column itself (profiles.id): the probed value is the new key
        if column in rel.defaulted:
            row.pop(column, None)
        elif type_ == "uuid":
            row[column] = str(uuid.uuid4())
        else:
            return None
    columns = [sql.Identifier(c) for c in rel.insertable if c in row]
    statement = sql.SQL("INSERT INTO {rel} ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::{rel}, "
                        "%(row)s::jsonb)").format(rel=rel.ident, cols=sql.SQL(", ").join(columns))
    return statement, json.dumps(row, default=str)


def _move_key(update: Cell, ties: dict, rel: ExposedRelation, base: dict | None) -> str | None:
    """An updatable row to move: the subject's own copy source when it can update it, else any updatable key."""
    if base is not None and rel.key:
        own = "|".join(str(base[c]) for c in rel.key)
        if own in update.keys:
            return own
    return update.keys[0] if update.keys else None


def _measure_moves(conn, subject, rel, action, ties, target: _Target, update: Cell, base: dict | None) -> Cell:
    cell = Cell(subject.key, rel.name, action)
    owners = rel.user_columns + rel.organization_columns
    if not owners:
        cell.note = "no owner columns (foreign keys to auth.users or to an organization table)"
        return cell
    if not target.privileged(conn, subject.role, rel, action):
        cell.note = f"no {PRIVILEGE[action]} privilege"
        return cell
    key = None
    if action == "update_moves":
        if update.error:
            cell.error = "cannot measure: the update probe failed"
            return cell
        key = _move_key(update, ties, rel, base)
        if key is None or not rel.key:
            cell.note = "no row the subject can update"
            return cell
    elif base is None:
        cell.note = "no row to copy"
        return cell
    moved, notes = [], []
    for column in owners:
        other = target.other_value(rel, column, ties)
        if other is None:
            notes.append(f"{column}: no other value to try")
            continue
        if action == "insert_as_other" and base is not None:  # (no base returned above)
            built = _insert_statement(rel, _as_subject(rel, base, ties) | {column: other})
            if built is None:
                notes.append(f"{column}: cannot make a new key for the copy")
                continue
            statement, params = built[0], {"row": built[1]}
        else:
            statement = sql.SQL("UPDATE {rel} SET {col} = (jsonb_populate_record(NULL::{rel}, %(row)s::jsonb))"
                                ".{col} WHERE CURRENT OF accessdiff_move").format(
                rel=rel.ident, col=sql.Identifier(column))
            params = {"row": json.dumps({column: other})}
        try:
            # A row count, neither RETURNING nor a WHERE on its columns: both make PostgreSQL demand that the new
            # row stay readable, and a row moved out of the subject's reach is exactly what this probe looks for.
            # WHERE CURRENT OF a cursor the subject opened is the blind write an API client can issue.
            with conn.transaction(force_rollback=True):
                if action == "update_moves":
                    conn.execute(sql.SQL("DECLARE accessdiff_move CURSOR FOR SELECT 1 FROM {} AS t WHERE {} = %s "
                                         "FOR UPDATE OF t").format(rel.ident, _key_expr(rel)), (key,))
                    conn.execute("FETCH accessdiff_move")
                if conn.execute(statement, params).rowcount:
                    moved.append(column)
        except psycopg.Error as exc:
            if not _refused(exc):
                cell.error = f"cannot measure: {column}: {error_text(exc)}"
                return cell
            if not sqlstate(exc).startswith("42501"):
                notes.append(f"{column}: {error_text(exc)}")
    cell.keys = sorted(moved, key=_md5)
    cell.count = cell.untied = len(moved)
    cell.untied_mask = "1" * len(moved)
    cell.digest = _md5(",".join(sorted(moved)))
    cell.note = "; ".join(notes)
    return cell


def _measure_subject(conn, subject: Subject, target: _Target) -> list[Cell]:
    if subject.role not in target.roles:
        return [Cell(subject.key, rel.name, action, error=f"cannot measure: role {subject.role} does not exist")
                for rel in target.relations for action in _actions(rel)]
    ties = target.ties(conn, subject)  # as the session role, before impersonating
    bases = {rel.name: _own_row(conn, rel, ties) for rel in target.relations
             if rel.kind == "table" and (rel.user_columns or rel.organization_columns)}
    cells = []
    with as_role(conn, subject.role, subject.user_id):
        for rel in target.relations:
            read = _measure_set(conn, subject, rel, "read", ties, None, target)
            cells.append(read)
            if rel.kind == "view":
                continue  # views are probed for reading; writes through them reach their base tables, probed too
            update = _measure_set(conn, subject, rel, "update", ties, read, target)
            base = bases.get(rel.name)
            cells += [update, _measure_set(conn, subject, rel, "delete", ties, read, target),
                      _measure_moves(conn, subject, rel, "insert_as_other", ties, target, update, base),
                      _measure_moves(conn, subject, rel, "update_moves", ties, target, update, base)]
    return cells


def _actions(rel: ExposedRelation) -> tuple[str, ...]:
    return ("read",) if rel.kind == "view" else ACTIONS


def choose_subjects(conn, relations: list[ExposedRelation] | None = None) -> list[Subject]:
    """Every user up to ACCESS_ALL_USERS_UP_TO, else a stratified sample; then the API roles without a user."""
    relations = relations if relations is not None else exposed_relations(conn, _setting(
        "ACCESS_EXPOSED_SCHEMAS", ["public"]))
    users = [r[0] for r in conn.execute(sql.SQL("SELECT id::text FROM {} ORDER BY id").format(
        sql.Identifier(*USERS_TABLE.split("."))))]
    api = [Subject(key, role) for key, role in API_SUBJECTS]
    if len(users) <= _setting("ACCESS_ALL_USERS_UP_TO", 500):
        return [Subject(f"user:{u}", "authenticated", u, "all users") for u in users] + api
    owned = dict.fromkeys(users, 0)
    memberships = dict.fromkeys(users, 0)
    for rel in relations:
        if rel.kind != "table":
            continue
        for column in rel.user_columns:
            if rel.key == (column,):
                continue  # one row per user (a profile) says nothing about how much a user owns
            for user, n in conn.execute(sql.SQL("SELECT {c}::text, count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY 1")
                                        .format(c=sql.Identifier(column), t=rel.ident)):
                if user in owned:
                    (memberships if rel.is_membership_table else owned)[user] += n
    chosen: dict[str, str] = {}
    size = _setting("ACCESS_SAMPLE_USERS", 200)
    per_stratum = max(1, size // 4)

    def take(candidates, stratum):
        taken = 0
        for user in candidates:
            if taken >= per_stratum:
                return
            if user not in chosen:
                chosen[user] = stratum
                taken += 1

    by_rows = sorted(users, key=lambda u: (-owned[u], u))
    take(by_rows, "most rows")
    take(sorted((u for u in users if owned[u]), key=lambda u: (owned[u], u)), "fewest rows")
    take([u for u in users if not owned[u]], "no rows")
    take(sorted((u for u in users if memberships[u] > 1), key=lambda u: (-memberships[u], u)), "several memberships")
    for user in sorted(users, key=_md5):
        if len(chosen) >= size:
            break
        chosen.setdefault(user, "hash order")
    return [Subject(f"user:{u}", "authenticated", u, s) for u, s in chosen.items()] + api


def _relation_record(rel: ExposedRelation) -> dict:
    return {"name": rel.name, "kind": rel.kind, "rls": rel.rls, "key": list(rel.key) or "md5 of the whole row",
            "user_columns": list(rel.user_columns), "organization_columns": list(rel.organization_columns),
            "organization_table": rel.is_organization_table, "membership_table": rel.is_membership_table}


def _session_settings(conn) -> None:
    conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
        sql.Literal(f"{int(_setting('ACCESS_PROBE_TIMEOUT_MS', 15000))}ms")))
    # Thousands of small probes: compiling each with JIT costs more than running it (0.8 s of 1.1 s
    # measured on a 180,000-row per-row policy).
    conn.execute("SET LOCAL jit = off")


def _measure_subjects(conn, subjects: list[Subject], target: _Target) -> dict[str, list[Cell]]:
    out = {}
    for subject in subjects:
        try:
            with conn.transaction(force_rollback=True):
                out[subject.key] = _measure_subject(conn, subject, target)
        except psycopg.Error as exc:  # e.g. the session-role reads for its ties failed
            out[subject.key] = [Cell(subject.key, rel.name, action, error=f"cannot measure: {error_text(exc)}")
                                for rel in target.relations for action in _actions(rel)]
    return out


def _measure_in_own_session(connect: Connect, subjects: list[Subject],
                            relations: list[ExposedRelation]) -> dict[str, list[Cell]]:
    conn = connect()
    try:
        with rolled_back(conn):
            _session_settings(conn)
            return _measure_subjects(conn, subjects, _Target(conn, relations))
    finally:
        conn.close()


def _measure_side_by_side(conn, connect: Connect | None, subjects: list[Subject],
                          target: _Target) -> dict[str, list[Cell]]:
    """Users are probed in ACCESS_PROBE_SESSIONS sessions at once (each user's probes in one session, so what one
    session measures never depends on another's rolled-back writes); the API roles, whose probes reach every row,
    after them in this session. A session that cannot be opened leaves its users to this one."""
    sessions = max(1, int(_setting("ACCESS_PROBE_SESSIONS", 2))) if connect is not None else 1
    users = [s for s in subjects if s.user_id]
    rest = [s for s in subjects if not s.user_id]
    if sessions == 1 or len(users) < 2 * sessions:
        return _measure_subjects(conn, subjects, target)
    shares = [users[i::sessions] for i in range(sessions)]
    out: dict[str, list[Cell]] = {}
    with ThreadPoolExecutor(max_workers=sessions - 1) as pool:
        assert connect is not None
        futures = [pool.submit(_measure_in_own_session, connect, share, target.relations) for share in shares[1:]]
        out |= _measure_subjects(conn, shares[0], target)
        for share, future in zip(shares[1:], futures, strict=True):
            try:
                out |= future.result()
            except (psycopg.Error, TargetUnavailable):
                out |= _measure_subjects(conn, share, target)
    return out | _measure_subjects(conn, rest, target)


def measure_access(conn, subjects: list[Subject] | None = None, connect: Connect | None = None) -> AccessMap:
    """The access map of `subjects` (chosen here when None) over every exposed relation (module docstring).
    ``connect()``, when given, opens another connection like ``conn`` for probing users side by side."""
    started = time.monotonic()
    schemas = list(_setting("ACCESS_EXPOSED_SCHEMAS", ["public"]))
    out = AccessMap(schemas=schemas)
    try:
        with rolled_back(conn):
            _session_settings(conn)
            relations = exposed_relations(conn, schemas)
            out.relations = [_relation_record(r) for r in relations]
            out.subjects = list(subjects) if subjects is not None else choose_subjects(conn, relations)
            cells = _measure_side_by_side(conn, connect, out.subjects, _Target(conn, relations))
            out.cells = [cell for subject in out.subjects for cell in cells[subject.key]]
    except psycopg.Error as exc:
        out.error = f"cannot measure: {error_text(exc)}"
    out.seconds = round(time.monotonic() - started, 3)
    return out


# --- comparing ----------------------------------------------------------------------------------------------

def _below(keys: list[str], horizon: str | None) -> set[str]:
    return set(keys) if horizon is None else {k for k in keys if _md5(k) <= horizon}


def _examples(keys) -> list[str]:
    return sorted(keys, key=_md5)[:EXAMPLES]


def _compare(before: Cell, after: Cell) -> tuple[set, set, int, int, bool]:
    """(gained keys, lost keys, gained count, lost count, exact) of two cells of one subject × relation × action."""
    horizons = [h for h in (before.horizon, after.horizon) if h is not None]
    horizon = min(horizons) if horizons else None
    old, new = _below(before.keys, horizon), _below(after.keys, horizon)
    gained, lost = new - old, old - new
    gained_n, lost_n, exact = len(gained), len(lost), horizon is None
    if not exact and not (before.sampled or after.sampled):
        # Beyond the kept keys only the totals are known: what the counts prove, at least.
        if before.count == after.count and before.digest == after.digest:
            return set(), set(), 0, 0, True
        gained_n = max(gained_n, after.count - before.count)
        lost_n = max(lost_n, before.count - after.count)
        if not gained_n and not lost_n:  # same count, different sets: at least one key each way
            gained_n = lost_n = 1
    return gained, lost, gained_n, lost_n, exact


def _subject_kind(key: str) -> str:
    return "user" if key.startswith("user:") else key


def diff_access(before: AccessMap, after: AccessMap) -> AccessDiff:
    """Every gain (an exposure), every loss and every cell that could not be measured, named (module docstring)."""
    out = AccessDiff(subjects=len(after.subjects), relations=len(after.relations), cells=len(after.cells))
    if before.error or after.error:
        out.error = before.error or after.error
        return out
    old = {c.ident: c for c in before.cells}
    existed = {r["name"] for r in before.relations}
    relations = {r["name"]: r for r in after.relations}
    measured = {s.key for s in after.subjects}
    for subject in before.subjects:
        if subject.key not in measured:
            out.differences.append(Difference(subject.key, "*", "*", "cannot_measure",
                                              reason="cannot measure: the subject was not measured after"))
    for cell in after.cells:
        prior = old.get(cell.ident)
        if cell.error or (prior is not None and prior.error):
            reason = cell.error or (prior.error if prior is not None else "")
            out.differences.append(Difference(*cell.ident, "cannot_measure", reason=reason))
            continue
        who = _subject_kind(cell.subject)
        if cell.relation not in existed:
            _judge_new(out, cell, relations.get(cell.relation, {}), who)
            continue
        prior = prior or Cell(*cell.ident, note="not measured before (new action or subject)")
        gained, lost, gained_n, lost_n, exact = _compare(prior, cell)
        if gained_n and who != "service_role":  # service_role bypasses RLS: more for it is no exposure
            # More over the subject's own rows (deleting its own jobs) is a new capability, not an exposure.
            foreign = gained & set(cell.untied_keys)
            foreign_n = max(len(foreign), cell.untied - prior.untied) if not exact else len(foreign)
            if cell.action in ("insert_as_other", "update_moves"):
                foreign = gained - _attributions(cell, relations.get(cell.relation, {}), who)
                foreign_n = len(foreign)
                if gained - foreign:
                    out.differences.append(Difference(
                        *cell.ident, "attribution", prior.count, cell.count, gained=len(gained - foreign),
                        gained_examples=_examples(gained - foreign),
                        reason="a row of the subject's own organization can be attributed to another member"))
                    gained_n = foreign_n
            if foreign_n:
                out.differences.append(Difference(*cell.ident, "exposure", prior.count, cell.count, gained=foreign_n,
                                                  exact=exact, gained_examples=_examples(foreign),
                                                  reason=_gain_reason(cell)))
            if gained_n > foreign_n:
                out.differences.append(Difference(*cell.ident, "gain_own", prior.count, cell.count,
                                                  gained=gained_n - foreign_n, exact=exact,
                                                  gained_examples=_examples(gained - foreign),
                                                  reason="more access to the subject's own rows"))
        if lost_n:
            own_lost = lost - set(prior.untied_keys)  # untied keys are complete at least as far as the keys
            # beyond the kept keys: fewer rows tied to the subject than before is a loss of its own
            beyond = (prior.count - prior.untied) - (cell.count - cell.untied) > 0
            own = who == "service_role" or (who == "user" and bool(own_lost or beyond))
            out.differences.append(Difference(
                *cell.ident, "loss" if own else "loss_other", prior.count, cell.count, lost=lost_n, exact=exact,
                lost_examples=_examples(own_lost or lost), reason="keys reachable before are not reachable after"))
    for cell in before.cells:  # a relation that disappeared: everything on it is lost
        if cell.relation not in relations and cell.count and not cell.error:
            who = _subject_kind(cell.subject)
            own = who == "service_role" or (who == "user" and cell.untied < cell.count)
            out.differences.append(Difference(*cell.ident, "loss" if own else "loss_other", cell.count, None,
                                              lost=cell.count, lost_examples=_examples(cell.keys),
                                              reason="the relation no longer exists"))
    return out


def _gain_reason(cell: Cell) -> str:
    if cell.action in ("insert_as_other", "update_moves"):
        return f"can now attribute a row to another owner through {', '.join(cell.keys)}"
    return f"can {cell.action} keys it could not {cell.action} before"


def _attributions(cell: Cell, relation: dict, who: str) -> set[str]:
    """User columns an update may set while the row stays in the subject's organization (its org columns are not
    touched): editing another member's row keeps its author, so a WITH CHECK may not pin the user. Not for
    inserts: a new row is the subject's own."""
    if cell.action != "update_moves" or who != "user" or not relation.get("organization_columns"):
        return set()
    return set(cell.keys) & set(relation.get("user_columns", []))


def _judge_new(out: AccessDiff, cell: Cell, relation: dict, who: str) -> None:
    """On a relation the migration created, a subject may reach only rows tied to itself (service_role: all)."""
    if who == "service_role" or not cell.untied:
        return
    examples = cell.untied_keys
    if cell.action in ("insert_as_other", "update_moves"):
        # Inviting another user into one's own organization is the new feature, not an exposure.
        keeps_org = relation.get("organization_columns") or relation.get("organization_table")
        examples = [c for c in cell.keys if not (keeps_org and c in relation.get("user_columns", []) and who == "user")]
        if not examples:
            return
    out.differences.append(Difference(
        *cell.ident, "exposure", None, cell.count, gained=len(examples) if cell.action in (
            "insert_as_other", "update_moves") else cell.untied, new_relation=True, exact=True,
        gained_examples=_examples(examples),
        reason=("a new relation: rows not tied to the subject (its own user id or organizations)"
                if cell.action not in ("insert_as_other", "update_moves") else _gain_reason(cell))))


def access_checkpoint(conn, before: AccessMap | None = None, connect: Connect | None = None) -> Checkpoint:
    """For the rehearsal and the runner: the "before" map (before None), or the same subjects again and the diff."""
    if before is None:
        return Checkpoint(measure_access(conn, connect=connect))
    after = measure_access(conn, before.subjects, connect=connect)
    return Checkpoint(after, diff_access(before, after))
